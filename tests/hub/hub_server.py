"""A minimal HF-compatible hub on 127.0.0.1, speaking the endpoints ``huggingface_hub`` uses.

Downloads (``snapshot_download`` / ``hf_hub_download``): repo info (default branch or per
revision), recursive tree listing, ``resolve/{rev}/{path}`` with ``X-Repo-Commit`` / ``ETag``
headers. Uploads: repo creation, ``preupload`` (every file "regular", so no LFS / xet), ``commit``
(NDJSON, base64 files, deletions, ``parentCommit`` checked like the Hub), tags. Repositories are
kept in memory as a list of immutable commits.

For resume tests: ``uploaded`` lists every file path whose content arrived in a commit request
(accepted or not), ``commits`` every accepted commit's (summary, added paths), and
``fail_commits`` holds 1-based numbers of commit requests to refuse with a 500 (each once).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> files
    refs: dict[str, str] = field(default_factory=dict)


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: Counter[str] = Counter()
        self.validated: list[dict[str, Any]] = []
        self.uploaded: list[str] = []  # paths whose bytes arrived in a commit request
        self.commits: list[tuple[str, list[str]]] = []  # accepted: (summary, added paths)
        self.fail_commits: set[int] = set()  # commit request numbers (1-based) to refuse once
        self.commit_requests = 0
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub._dispatch(self, "GET")

            def do_HEAD(self) -> None:
                hub._dispatch(self, "HEAD")

            def do_POST(self) -> None:
                hub._dispatch(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    # ------------------------------------------------------------------ helpers
    def _resolve(self, repo_id: str, rev: str) -> tuple[Repo, str] | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        oid = repo.refs.get(rev) or (rev if rev in repo.commits else None)
        return (repo, oid) if oid else None

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes | dict[str, Any] | list[Any] = b"",
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict | list) else body
        h.send_response(status)
        h.send_header("Content-Length", str(len(data)))
        if isinstance(body, dict | list):
            h.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        if not head:
            h.wfile.write(data)

    def _error(
        self, h: BaseHTTPRequestHandler, status: int, code: str, msg: str, head: bool = False
    ) -> None:
        self._send(h, status, {"error": msg}, {"X-Error-Code": code, "X-Error-Message": msg}, head)

    # ------------------------------------------------------------------ routing
    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        path = unquote(url.path)
        with self.lock:
            self.requests[f"{method} {path}"] += 1
        body = b""
        if method == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        head = method == "HEAD"
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(h, json.loads(body)["content"])
        if method == "POST" and path == "/api/repos/create":
            return self._create(h, json.loads(body))
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/revision/(.+)", path)
        if m:
            return self._info(h, m[1], m[2])
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)", path)
        if m and method == "GET":
            return self._info(h, m[1], "main")
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
        if m:
            return self._tree(h, m[1], m[2], (m[3] or "").lstrip("/"), parse_qs(url.query))
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/preupload/(.+)", path)
        if m and method == "POST":
            files = json.loads(body)["files"]
            out = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return self._send(h, 200, {"files": out})
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/commit/(.+)", path)
        if m and method == "POST":
            return self._commit(h, m[1], m[2], body)
        m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tag/(.+)", path)
        if m and method == "POST":
            return self._tag(h, m[1], m[2], json.loads(body))
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._file(h, m[1], m[2], m[3], head)
        self._error(h, 404, "EntryNotFound", f"no route {method} {path}", head)

    def _validate_yaml(self, h: BaseHTTPRequestHandler, content: str) -> None:
        # Like the Hub: the README's YAML header must parse to a mapping.
        import yaml

        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(match[1]) if match else {}
            ok = isinstance(meta, dict)
        except yaml.YAMLError:
            ok = False
        if not ok:
            return self._send(h, 400, {"errors": [{"message": "invalid YAML metadata"}]})
        self.validated.append(meta)
        self._send(h, 200, {"errors": [], "warnings": []})

    def _create(self, h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        repo_id = f"{req.get('organization') or 'user'}/{req['name']}"
        with self.lock:
            if repo_id in self.repos:
                # Like the Hub: a 409 that still says where the repository is.
                msg = "You already created this dataset repo"
                body = {"error": msg, "url": f"{self.endpoint}/datasets/{repo_id}"}
                return self._send(h, 409, body, {"X-Error-Message": msg})
            repo = Repo()
            oid = hashlib.sha1(f"init {repo_id}".encode()).hexdigest()
            repo.commits[oid] = {".gitattributes": b"*.bin binary\n"}
            repo.refs["main"] = oid
            self.repos[repo_id] = repo
        self._send(
            h, 200, {"url": f"{self.endpoint}/datasets/{repo_id}", "name": repo_id, "id": repo_id}
        )

    def _info(self, h: BaseHTTPRequestHandler, repo_id: str, rev: str) -> None:
        if repo_id not in self.repos:
            return self._error(h, 404, "RepoNotFound", f"Repository {repo_id} not found")
        found = self._resolve(repo_id, rev)
        if found is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        repo, oid = found
        self._send(
            h,
            200,
            {
                "_id": repo_id,
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": oid,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p} for p in sorted(repo.commits[oid])],
            },
        )

    def _tree(
        self,
        h: BaseHTTPRequestHandler,
        repo_id: str,
        rev: str,
        prefix: str,
        query: dict[str, list[str]],
    ) -> None:
        found = self._resolve(repo_id, unquote(rev))
        if found is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        repo, oid = found
        files = repo.commits[oid]
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        base = f"{prefix}/" if prefix else ""
        entries: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path in sorted(files):
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            parts = rest.split("/")
            for i in range(1, len(parts)):
                if recursive or i == 1:
                    dirs.add(base + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                data = files[path]
                entries.append(
                    {"type": "file", "oid": _git_blob_oid(data), "size": len(data), "path": path}
                )
        entries += [{"type": "directory", "oid": "0" * 40, "path": d} for d in sorted(dirs)]
        self._send(h, 200, entries)

    def _file(
        self, h: BaseHTTPRequestHandler, repo_id: str, rev: str, path: str, head: bool
    ) -> None:
        found = self._resolve(repo_id, unquote(rev))
        if found is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        repo, oid = found
        data = repo.commits[oid].get(path)
        if data is None:
            return self._error(h, 404, "EntryNotFound", f"{path} not found", head)
        etag = f'"{_git_blob_oid(data)}"'
        self._send(
            h, 200, data, {"X-Repo-Commit": oid, "ETag": etag, "Accept-Ranges": "bytes"}, head
        )

    def _commit(self, h: BaseHTTPRequestHandler, repo_id: str, rev: str, body: bytes) -> None:
        items = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        added = [i["value"]["path"] for i in items if i["key"] == "file"]
        with self.lock:
            self.commit_requests += 1
            number = self.commit_requests
            self.uploaded += added
            refuse = number in self.fail_commits
            self.fail_commits.discard(number)
        if refuse:
            return self._error(h, 500, "InternalError", f"commit request {number} refused (test)")
        found = self._resolve(repo_id, unquote(rev))
        if found is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        repo, parent = found
        files = dict(repo.commits[parent])
        summary = ""
        for item in items:
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
                expected = value.get("parentCommit")
                if expected and expected != parent:
                    # Like the Hub: the branch moved since the client looked.
                    return self._error(
                        h, 412, "PreconditionFailed", f"{rev} is at {parent}, not {expected}"
                    )
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(h, 400, "BadRequest", "only base64 files are supported")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                doomed = value["path"].rstrip("/")
                files = {
                    p: d for p, d in files.items() if p != doomed and not p.startswith(doomed + "/")
                }
            else:
                return self._error(h, 400, "BadRequest", f"unsupported commit operation {key}")
        digest = hashlib.sha1(parent.encode() + summary.encode())
        for p in sorted(files):
            digest.update(p.encode() + _git_blob_oid(files[p]).encode())
        oid = digest.hexdigest()
        with self.lock:
            repo.commits[oid] = files
            repo.refs[unquote(rev)] = oid
            self.commits.append((summary, added))
        self._send(
            h,
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{oid}",
            },
        )

    def _tag(self, h: BaseHTTPRequestHandler, repo_id: str, rev: str, req: dict[str, Any]) -> None:
        found = self._resolve(repo_id, unquote(rev))
        if found is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        repo, oid = found
        repo.refs[req["tag"]] = oid
        self._send(h, 200, {"name": req["tag"]})
