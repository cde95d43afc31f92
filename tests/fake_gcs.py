"""A Google Cloud Storage stand-in for tests: a local HTTP server speaking the subset of the
GCS JSON API that tensorstore's `gcs` kvstore driver uses (media download with ranges and
generation preconditions, media upload, delete, list with prefixes and pages), over objects
kept as files under a local directory; and an fsspec filesystem registered for `gs://` that
reads the same directory (what `etils.epath` uses for `gs://` paths, in place of gcsfs).

So `--workdir gs://bucket/run` in a test reaches orbax's array writes through tensorstore's
real GCS client (HTTP to this server), and our own reads and writes through epath; both land
in `<root>/bucket/run/...`. orbax also asks the bucket (with google-cloud-storage, which is
not installed here) whether it has a hierarchical namespace: the fake bucket answers no.

    with fake_gcs(tmp_path / "gcs") as root: ...   # gs://b/x  <->  root / "b" / "x"
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGE = 100  # list page size: small, so pagination is exercised


class _Store:
    """Objects as files under `root/<bucket>/<name>`; a generation per object (in memory)."""

    def __init__(self, root: Path):
        self.root, self.lock, self.generations, self.counter = root, threading.Lock(), {}, 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request

    def file(self, bucket: str, name: str) -> Path:
        return self.root / bucket / name

    def generation(self, bucket: str, name: str) -> int:
        """0 when the object does not exist (GCS's precondition meaning of 0)."""
        if not self.file(bucket, name).is_file():
            return 0
        key = (bucket, name)
        if key not in self.generations:  # written by the fsspec side: give it one
            self.counter += 1
            self.generations[key] = self.counter
        return self.generations[key]

    def bump(self, bucket: str, name: str) -> int:
        self.counter += 1
        self.generations[(bucket, name)] = self.counter
        return self.counter


class _Handler(BaseHTTPRequestHandler):
    store: _Store
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict | None = None,
               ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        self._reply(code, json.dumps({"error": {"code": code, "message": message}}).encode())

    def _parse(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")]
        self.store.requests.append((self.command, url.path))
        return parts, query

    def _precondition_fails(self, query: dict, current: int) -> bool:
        match = query.get("ifGenerationMatch")
        if match is not None and int(match) != current:
            return True
        not_match = query.get("ifGenerationNotMatch")
        return not_match is not None and int(not_match) == current

    def _meta(self, bucket: str, name: str, gen: int) -> dict:
        size = self.store.file(bucket, name).stat().st_size
        return {"kind": "storage#object", "bucket": bucket, "name": name, "size": str(size),
                "generation": str(gen), "metageneration": "1"}

    def do_GET(self) -> None:  # noqa: N802
        parts, query = self._parse()
        # /storage/v1/b/<bucket>/o[/<object>]
        if parts[1:4] != ["storage", "v1", "b"] or len(parts) < 6 or parts[5] != "o":
            return self._error(404, f"unsupported path {self.path}")
        bucket = parts[4]
        if len(parts) == 6:
            return self._list(bucket, query)
        name = "/".join(parts[6:])
        with self.store.lock:
            gen = self.store.generation(bucket, name)
            if gen == 0:
                return self._error(404, f"no such object {bucket}/{name}")
            if self._precondition_fails(query, gen):
                return self._reply(304 if "ifGenerationNotMatch" in query else 412,
                                   headers={"x-goog-generation": str(gen)})
            if query.get("alt") != "media":
                return self._reply(200, json.dumps(self._meta(bucket, name, gen)).encode())
            data = self.store.file(bucket, name).read_bytes()
        rng = self.headers.get("Range")
        headers = {"x-goog-generation": str(gen)}
        if rng and rng.startswith("bytes="):
            lo, _, hi = rng[6:].partition("-")
            if lo == "":  # suffix range
                start, end = max(0, len(data) - int(hi)), len(data) - 1
            else:
                start, end = int(lo), (int(hi) if hi else len(data) - 1)
            end = min(end, len(data) - 1)
            if start > end and len(data) > 0 or start > len(data):
                return self._reply(416, headers=headers)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._reply(206, data[start:end + 1], headers, "application/octet-stream")
        return self._reply(200, data, headers, "application/octet-stream")

    def _list(self, bucket: str, query: dict) -> None:
        prefix, start = query.get("prefix", ""), query.get("pageToken", "")
        lo, hi = query.get("startOffset", ""), query.get("endOffset")
        base = self.store.root / bucket
        with self.store.lock:
            names = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) \
                if base.is_dir() else []
            names = [n for n in names if n.startswith(prefix) and n >= lo and n > start
                     and (hi is None or n < hi)]
            page = names[:PAGE]
            items = [self._meta(bucket, n, self.store.generation(bucket, n)) for n in page]
        body = {"kind": "storage#objects", "items": items}
        if len(names) > PAGE:
            body["nextPageToken"] = page[-1]
        self._reply(200, json.dumps(body).encode())

    def do_POST(self) -> None:  # noqa: N802
        parts, query = self._parse()
        # /upload/storage/v1/b/<bucket>/o?uploadType=media&name=<object>
        if parts[1:5] != ["upload", "storage", "v1", "b"] or query.get("uploadType") != "media":
            return self._error(400, f"unsupported upload {self.path}")
        bucket, name = parts[5], query["name"]
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.store.lock:
            if self._precondition_fails(query, self.store.generation(bucket, name)):
                return self._error(412, "precondition failed")
            path = self.store.file(bucket, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".upload")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            gen = self.store.bump(bucket, name)
            meta = self._meta(bucket, name, gen)
        self._reply(200, json.dumps(meta).encode())

    def do_DELETE(self) -> None:  # noqa: N802
        parts, query = self._parse()
        if parts[1:4] != ["storage", "v1", "b"] or len(parts) < 7:
            return self._error(400, f"unsupported delete {self.path}")
        bucket, name = parts[4], "/".join(parts[6:])
        with self.store.lock:
            gen = self.store.generation(bucket, name)
            if gen == 0:
                return self._error(404, "no such object")
            if self._precondition_fails(query, gen):
                return self._error(412, "precondition failed")
            self.store.file(bucket, name).unlink()
            self.store.generations.pop((bucket, name), None)
        self._reply(204)


_ROOT: list[Path] = []  # the directory `gs://` currently maps to (fsspec caches instances)


def register_fsspec_gs() -> None:
    """Make fsspec (hence epath) resolve `gs://bucket/x` to `<root>/bucket/x`, returning
    bucket-relative names as gcsfs does."""
    import fsspec
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    class LocalGCS(DirFileSystem):
        protocol = ("gs", "gcs")

        def __init__(self, *args, **kwargs):
            super().__init__(path="/", fs=LocalFileSystem(auto_mkdir=True))  # as GCS: no mkdir

        @property
        def path(self):
            return str(_ROOT[-1])

        @path.setter
        def path(self, value):
            pass

    fsspec.register_implementation("gs", LocalGCS, clobber=True)
    fsspec.register_implementation("gcs", LocalGCS, clobber=True)


@contextlib.contextmanager
def fake_gcs(root: Path):
    """Serve `root` as GCS for tensorstore and fsspec/epath in this process; yields the
    request log [(method, path)]."""
    root.mkdir(parents=True, exist_ok=True)
    store = _Store(root)
    handler = type("Handler", (_Handler,), {"store": store})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved = {k: os.environ.get(k) for k in ("TENSORSTORE_GCS_HTTP_URL",
                                            "GOOGLE_AUTH_TOKEN_FOR_TESTING")}
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = f"http://127.0.0.1:{server.server_port}"
    os.environ["GOOGLE_AUTH_TOKEN_FOR_TESTING"] = "fake-token"
    _ROOT.append(root)
    register_fsspec_gs()
    from orbax.checkpoint._src.path import gcs_utils

    hns = gcs_utils.is_hierarchical_namespace_enabled
    gcs_utils.is_hierarchical_namespace_enabled = lambda path: False  # a flat fake bucket
    try:
        yield store.requests
    finally:
        gcs_utils.is_hierarchical_namespace_enabled = hns
        _ROOT.pop()
        server.shutdown()
        server.server_close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
