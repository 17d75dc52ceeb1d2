#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for the SM's device endpoints (docs/protocol.md, the cellular
path) for the device's tests: HTTPS with a given certificate, verifies
nothing. Each answer comes from DIR/<name>.json, read at every request
(name: poll for /v1/device/poll, receipt for /v1/device/receipt, other):
{"status": N, "body": "text" | null, "headers": {..}, "delay": seconds,
 "content-length": N (overrides the true one), "once": true (then the
file is removed)}. Without the file: poll
answers 204, receipt 200 {"result": "processed"}, anything else 404.
Every request is appended to DIR/requests.log as one JSON line
{"path", "time", "body"}. Prints the port on its first line."""

import http.server
import json
import os
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        directory = self.server.directory
        length = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(length).decode('utf-8', 'replace')
        line = json.dumps({'path': self.path, 'time': time.time(),
                           'content-type': self.headers.get('Content-Type'),
                           'body': body}) + '\n'
        # one write(2) with O_APPEND: a reader sees whole lines or none
        fd = os.open(os.path.join(directory, 'requests.log'),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        name = {'/v1/device/poll': 'poll',
                '/v1/device/receipt': 'receipt'}.get(self.path, 'other')
        answer = {'poll': {'status': 204, 'body': None},
                  'receipt': {'status': 200,
                              'body': '{"result": "processed"}'},
                  'other': {'status': 404,
                            'body': '{"error": "not-found"}'}}[name]
        path = os.path.join(directory, name + '.json')
        if os.path.exists(path):
            with open(path) as f:
                answer = json.load(f)
            if answer.get('once'):
                os.unlink(path)
        time.sleep(answer.get('delay', 0))
        data = (answer.get('body') or '').encode()
        self.send_response(answer['status'])
        for k, v in answer.get('headers', {}).items():
            self.send_header(k, v)
        if answer['status'] != 204:
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length',
                             str(answer.get('content-length', len(data))))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


def main():
    cert, key, directory = sys.argv[1:4]
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    server.directory = directory
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
