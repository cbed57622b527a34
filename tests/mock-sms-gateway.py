#!/usr/bin/env python3
"""Mock HTTP SMS gateway for the tests and the demo of rlm_twostep.

The gateway listens on 127.0.0.1 only. Every path except /_health and /_mode
is a message endpoint, which takes:

  POST with an application/json object or an application/x-www-form-urlencoded
       body (fields of the query string fill in fields the body lacks)
  GET  with the fields in the query string

The recipient is read from the first field present of to, To, phone,
recipient, number, and the text from text, Text, Body, body, message, msg.

The mode sets the reply to a message request:

  accept      200 with status "queued" and a message id
  error-body  200 with status "error" and error "insufficient credit"
  error500    500 with an error body
  hang        no reply: the gateway holds the request until the client
              closes the connection or the gateway stops
  slow        the reply of accept mode after --delay seconds. Nothing is
              recorded when the client closes the connection first.

hang, error500 and the wait of slow mode come before the token check (401)
and the field checks (400, 415), as on a gateway that is down. error-body
and accept replies go only to valid requests.

Replies to a JSON request, or to a request whose Accept header names
application/json, are JSON objects. Other replies carry the same fields
form-encoded, for example "status=queued&id=...".

Each accepted message is appended to --outbox as one JSON object per line
(JSON Lines), before the reply is sent:

  {"time": "2024-01-31T12:00:00.000Z", "id": "...", "path": "/send",
   "query": "...", "method": "POST", "content_type": "application/json",
   "to": "+15550100200", "text": "Your code is 123456", "code": "123456",
   "headers": {"Content-Type": "application/json", "Authorization": false},
   "raw": "<request body as text>"}

"code" is the first run of 4 to 10 digits in the text, or null.
"headers" records whether an Authorization header was present, never its
value. The outbox file is appended to, never truncated.

Control endpoints (GET, no token needed):

  /_health                  200 {"status": "ok", "mode", "delay", "accepted"}
  /_mode                    200 {"mode", "delay"}
  /_mode?set=MODE[&delay=S] switch the mode (and the slow delay) at run time

The gateway speaks HTTP/1.1 with keep-alive and closes connections that stay
idle for 60 s. It exits with status 0 on SIGTERM, and on SIGINT unless it
started with SIGINT ignored. Log lines go to stderr. With --print, each
accepted message is also printed to stdout as one line:
"sms: to RECIPIENT: TEXT".
"""

import argparse
import base64
import binascii
import hmac
import json
import logging
import os
import re
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

MODES = ("accept", "error500", "hang", "error-body", "slow")
RECIPIENT_FIELDS = ("to", "To", "phone", "recipient", "number")
TEXT_FIELDS = ("text", "Text", "Body", "body", "message", "msg")
CODE_PATTERN = re.compile(r"(?<![0-9])[0-9]{4,10}(?![0-9])")

MAX_BODY_BYTES = 64 * 1024
MAX_LINE_BYTES = 8 * 1024
IDLE_TIMEOUT_SECONDS = 60
# Interval at which a held request checks for a closed client or a stop.
POLL_SECONDS = 0.1

log = logging.getLogger("mock-sms-gateway")


class RequestError(Exception):
    """A message request that gets an error reply instead of being processed."""

    def __init__(self, status, message, close=False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class Outbox:
    """JSON Lines file of accepted messages, shared by the handler threads."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.count = 0
        # Create the file at start-up, so that a bad path fails at once.
        with open(self.path, "a", encoding="utf-8"):
            pass

    def append(self, record):
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.lock:
            with open(self.path, "a", encoding="utf-8") as outbox_file:
                outbox_file.write(line)
            self.count += 1


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, outbox, mode, delay, token, print_messages):
        self.outbox = outbox
        self.mode = mode
        self.delay = delay
        self.token = token
        self.print_messages = print_messages
        self.stopping = threading.Event()
        self.print_lock = threading.Lock()
        super().__init__(address, GatewayHandler)

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS
        # lookup that the gateway does not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-sms-gateway/1"
    # Socket timeout: an idle keep-alive connection is closed after this.
    timeout = IDLE_TIMEOUT_SECONDS

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self):
        url = urlsplit(self.path)
        if url.path == "/_health" and self.command == "GET":
            self._handle_health()
        elif url.path == "/_mode" and self.command == "GET":
            self._handle_mode(url.query)
        else:
            try:
                self._handle_message(url.path, url.query)
            except RequestError as error:
                log.info("%s: rejected %s %s with status %d: %s",
                         self.address_string(), self.command, url.path, error.status, error.message)
                if error.close:
                    self.close_connection = True
                self._send_result(error.status, {"status": "error", "error": error.message})
            except (BrokenPipeError, ConnectionResetError) as error:
                log.info("%s: connection lost: %s", self.address_string(), error)
                self.close_connection = True

    #
    # Control endpoints
    #

    def _handle_health(self):
        self._send_json(200, {
            "status": "ok",
            "mode": self.server.mode,
            "delay": self.server.delay,
            "accepted": self.server.outbox.count,
        })

    def _handle_mode(self, query):
        params = parse_qs(query, keep_blank_values=True)
        if "delay" in params:
            try:
                delay = float(params["delay"][0])
            except ValueError:
                delay = -1.0
            if not 0 <= delay <= 3600:
                self._send_json(400, {"status": "error",
                                      "error": "invalid delay %r: expected seconds in 0..3600" % params["delay"][0]})
                return
            self.server.delay = delay
            log.info("slow delay set to %g s", delay)
        if "set" in params:
            mode = params["set"][0]
            if mode not in MODES:
                self._send_json(400, {"status": "error",
                                      "error": "invalid mode %r: expected one of %s" % (mode, ", ".join(MODES))})
                return
            self.server.mode = mode
            log.info("mode set to %s", mode)
        self._send_json(200, {"mode": self.server.mode, "delay": self.server.delay})

    #
    # Message endpoints
    #

    def _handle_message(self, path, query):
        body = self._read_body()
        mode = self.server.mode

        if mode == "hang":
            self._hold_request(mode, None)
            return
        if mode == "error500":
            self._send_result(500, {"status": "error", "error": "internal server error"})
            return
        if mode == "slow" and not self._hold_request(mode, self.server.delay):
            return

        if not self._is_authorized():
            self._send_result(401, {"status": "error", "error": "invalid or missing credentials"})
            return
        fields = self._parse_fields(body, query)
        recipient = _first_field(fields, RECIPIENT_FIELDS)
        text = _first_field(fields, TEXT_FIELDS)
        if recipient is None:
            raise RequestError(400, "missing recipient: expected one of " + ", ".join(RECIPIENT_FIELDS))
        if text is None:
            raise RequestError(400, "missing text: expected one of " + ", ".join(TEXT_FIELDS))

        if mode == "error-body":
            self._send_result(200, {"status": "error", "error": "insufficient credit"})
            return

        message_id = uuid.uuid4().hex
        self._record(message_id, path, query, recipient, text, body)
        self._send_result(200, {"status": "queued", "id": message_id})

    def _record(self, message_id, path, query, recipient, text, body):
        code_match = CODE_PATTERN.search(text)
        content_type = self.headers.get("Content-Type")
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "id": message_id,
            "path": path,
            "query": query,
            "method": self.command,
            "content_type": _media_type(content_type) or None,
            "to": recipient,
            "text": text,
            "code": code_match.group(0) if code_match else None,
            "headers": {
                "Content-Type": content_type,
                "Authorization": "Authorization" in self.headers,
            },
            "raw": body.decode("utf-8", errors="replace"),
        }
        self.server.outbox.append(record)
        log.info("%s: accepted message %s to %s", self.address_string(), message_id, recipient)
        if self.server.print_messages:
            one_line = " ".join(text.split())
            with self.server.print_lock:
                print("sms: to %s: %s" % (recipient, one_line), flush=True)

    def _hold_request(self, mode, seconds):
        """Hold the request for SECONDS, or with None until it ends otherwise.

        Return True when the time ran out. Return False when the client
        closed the connection or the gateway stops, after marking the
        connection to be closed without a reply.
        """
        started = time.monotonic()
        deadline = None if seconds is None else started + seconds
        while True:
            if self.server.stopping.is_set():
                reason = "the gateway stops"
                break
            wait = POLL_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                wait = min(wait, remaining)
            readable, _, _ = select.select([self.connection], [], [], wait)
            if readable and not self._peer_is_connected():
                reason = "the client closed the connection"
                break
            if readable:
                # The client sent more bytes, such as a pipelined request.
                # They stay unread until the held request ends.
                time.sleep(wait)
        log.info("%s: %s request on %s ended after %.1f s without a reply: %s",
                 self.address_string(), mode, self.path, time.monotonic() - started, reason)
        self.close_connection = True
        return False

    def _peer_is_connected(self):
        try:
            return self.connection.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _is_authorized(self):
        token = self.server.token
        if token is None:
            return True
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            offered = credentials
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                return False
            offered = decoded.partition(":")[2]
        else:
            return False
        return hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8"))

    #
    # Request bodies and fields
    #

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError(400, "invalid Content-Length %r" % length_text, close=True)
        if length < 0:
            raise RequestError(400, "invalid Content-Length %r" % length_text, close=True)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, "body of %d bytes exceeds the maximum of %d" % (length, MAX_BODY_BYTES),
                               close=True)
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(400, "body ended after %d of %d bytes" % (len(body), length), close=True)
        return body

    def _read_chunked_body(self):
        body = bytearray()
        while True:
            size_line = self.rfile.readline(MAX_LINE_BYTES)
            if not size_line.endswith(b"\n"):
                raise RequestError(400, "invalid chunked body: incomplete chunk size line", close=True)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise RequestError(400, "invalid chunked body: chunk size is not hexadecimal", close=True)
            if size == 0:
                break
            if size < 0 or len(body) + size > MAX_BODY_BYTES:
                raise RequestError(413, "body exceeds the maximum of %d bytes" % MAX_BODY_BYTES, close=True)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise RequestError(400, "invalid chunked body: chunk ended early", close=True)
            body += chunk
            self.rfile.readline(MAX_LINE_BYTES)
        # Skip the trailer fields up to the empty line that ends the body.
        for _ in range(100):
            line = self.rfile.readline(MAX_LINE_BYTES)
            if line in (b"\r\n", b"\n", b""):
                return bytes(body)
        raise RequestError(400, "invalid chunked body: more than 100 trailer lines", close=True)

    def _parse_fields(self, body, query):
        """Return the request's fields as a dict of name to string value."""
        query_fields = _form_fields(query)
        if self.command == "GET":
            if not query:
                raise RequestError(400, "a GET message request needs the recipient and text in the query string")
            return query_fields

        media_type = _media_type(self.headers.get("Content-Type"))
        text = body.decode("utf-8", errors="replace")
        if media_type == "application/json":
            try:
                document = json.loads(text)
            except ValueError as error:
                raise RequestError(400, "invalid JSON body: %s" % error)
            if not isinstance(document, dict):
                raise RequestError(400, "invalid JSON body: expected an object")
            fields = {}
            for name, value in document.items():
                if isinstance(value, str):
                    fields[name] = value
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    fields[name] = str(value)
        elif media_type == "application/x-www-form-urlencoded":
            fields = _form_fields(text)
        else:
            raise RequestError(415, "unsupported Content-Type %r: expected application/json or "
                               "application/x-www-form-urlencoded" % (media_type or "(none)"))
        for name, value in query_fields.items():
            fields.setdefault(name, value)
        return fields

    #
    # Replies
    #

    def _wants_json(self):
        return (_media_type(self.headers.get("Content-Type")) == "application/json"
                or "application/json" in self.headers.get("Accept", ""))

    def _send_result(self, status, result):
        """Send RESULT as JSON or form-encoded, in the format of the request."""
        if self._wants_json():
            self._send_json(status, result)
        else:
            self._send_body(status, "application/x-www-form-urlencoded",
                            urlencode(result).encode("utf-8"))

    def _send_json(self, status, result):
        self._send_body(status, "application/json", json.dumps(result).encode("utf-8"))

    def _send_body(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="mock-sms-gateway"')
            self.send_header("WWW-Authenticate", 'Basic realm="mock-sms-gateway"')
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _media_type(content_type):
    return (content_type or "").split(";", 1)[0].strip().lower()


def _form_fields(text):
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _first_field(fields, names):
    """Return the value of the first of NAMES present and not empty, or None."""
    for name in names:
        value = fields.get(name)
        if value:
            return value
    return None


def _write_ready_file(path, port):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as ready_file:
        ready_file.write("%d\n" % port)
    os.replace(temporary, path)


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; only 127.0.0.1 is allowed (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="TCP port to listen on, 0 to pick a free one (default: 0)")
    parser.add_argument("--outbox", required=True,
                        help="JSON Lines file that each accepted message is appended to")
    parser.add_argument("--mode", choices=MODES, default="accept",
                        help="reply to message requests: accept, error500 (HTTP 500), hang (no reply), "
                        "error-body (200 with an error), slow (accept after --delay) (default: accept)")
    parser.add_argument("--delay", type=float, default=2.0,
                        help="seconds that slow mode waits before it replies (default: 2)")
    parser.add_argument("--token",
                        help="require 'Authorization: Bearer TOKEN' or HTTP Basic with password TOKEN")
    parser.add_argument("--print", dest="print_messages", action="store_true",
                        help="print each accepted message to stdout as 'sms: to RECIPIENT: TEXT'")
    parser.add_argument("--ready-file",
                        help="file that the port is written to once the gateway listens")
    args = parser.parse_args(argv)

    if args.host != "127.0.0.1":
        parser.error("invalid --host %r: the mock gateway listens on 127.0.0.1 only" % args.host)
    if not 0 <= args.port <= 65535:
        parser.error("invalid --port %d: expected 0..65535" % args.port)
    if not 0 <= args.delay <= 3600:
        parser.error("invalid --delay %g: expected seconds in 0..3600" % args.delay)
    if args.token == "":
        parser.error("invalid --token: it must not be empty")
    return args


def main(argv):
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s mock-sms-gateway: %(message)s")

    try:
        outbox = Outbox(args.outbox)
    except OSError as error:
        log.error("opening the outbox %s failed: %s", args.outbox, error)
        return 1
    try:
        server = GatewayServer((args.host, args.port), outbox, args.mode, args.delay,
                               args.token, args.print_messages)
    except OSError as error:
        log.error("listening on %s:%d failed: %s", args.host, args.port, error)
        return 1
    port = server.server_address[1]

    stop_requested = threading.Event()
    received = []

    def on_signal(signum, frame):
        received.append(signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    # A shell without job control starts background commands with SIGINT
    # ignored, so that Ctrl-C reaches only the script, which then stops the
    # gateway with TERM. Keep it ignored in that case.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_signal)

    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serve_thread.start()
    if args.ready_file:
        try:
            _write_ready_file(args.ready_file, port)
        except OSError as error:
            log.error("writing the ready file %s failed: %s", args.ready_file, error)
            server.shutdown()
            server.server_close()
            return 1
    print("mock-sms-gateway: listening on http://127.0.0.1:%d/ in mode %s" % (port, args.mode), flush=True)

    # A timed wait, so that the signal handler runs within half a second.
    while not stop_requested.wait(0.5):
        pass
    server.stopping.set()
    server.shutdown()
    server.server_close()
    log.info("stopped on %s after %d accepted messages", received[0], outbox.count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
