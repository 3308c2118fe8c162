"""A loopback HTTP/1.1 front for moto_server that keeps client connections
alive, as AWS's endpoints do, for `make bench-org`.

moto's server (werkzeug's) answers every request with `Connection: close`,
so a client measured against it pays a TCP connect, a DNS lookup and a
teardown per request: about a third of the reaper's CPU in an organisation
pass, which AWS (HTTP/1.1 persistent connections) does not cause. This
front accepts persistent connections and forwards each request to moto on
a connection of its own; its CPU is its own process's, not the client's.

Requests must carry `Content-Length` (the SDK's DynamoDB, STS and
Organizations requests do). Usage: `url, stop = start(upstream_url)`.
"""

import asyncio
import threading


async def _read_message_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return lines[0], headers


def _header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _without(headers, *names):
    return [(k, v) for k, v in headers if k.lower() not in names]


async def _forward(host, port, start_line, headers, body):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        headers = _without(headers, "connection") + [("Connection", "close")]
        head = start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        status, response_headers = await _read_message_head(reader)
        rest = await reader.read()  # moto closes the connection after its response
        length = _header(response_headers, "content-length")
        if length is not None:
            rest = rest[: int(length)]
        elif _header(response_headers, "transfer-encoding") is None:
            response_headers.append(("Content-Length", str(len(rest))))
        return status, _without(response_headers, "connection"), rest
    finally:
        writer.close()


async def _serve(reader, writer, host, port):
    try:
        while True:
            try:
                start_line, headers = await _read_message_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            body = await reader.readexactly(int(_header(headers, "content-length") or 0))
            status, response_headers, response_body = await _forward(host, port, start_line, headers, body)
            response_headers.append(("Connection", "keep-alive"))
            head = status + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in response_headers) + "\r\n"
            writer.write(head.encode("latin-1") + response_body)
            await writer.drain()
    finally:
        writer.close()


def start(upstream_url):
    """Serve on a free loopback port in a thread of its own; returns the
    front's URL and a function that stops it."""
    host, port = upstream_url.removeprefix("http://").split(":")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box = {}

    async def main():
        server = await asyncio.start_server(lambda r, w: _serve(r, w, host, int(port)), "127.0.0.1", 0)
        box["port"] = server.sockets[0].getsockname()[1]
        box["server"] = server
        ready.set()
        async with server:
            await server.serve_forever()

    def run():
        try:
            loop.run_until_complete(main())
        except asyncio.CancelledError:
            pass  # stopped

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop():
        loop.call_soon_threadsafe(box["server"].close)

    return f"http://127.0.0.1:{box['port']}", stop
