"""A loopback HTTP server posing as the Hugging Face Hub, serving repositories from a dict.

Point ``HF_ENDPOINT`` at :attr:`FakeHub.endpoint` and ``huggingface_hub`` downloads from it
exactly as from the real Hub: ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with
``X-Repo-Commit`` and ``ETag`` headers; weight files (LFS on the real Hub) answer with a 302
to a second loopback server standing in for the CDN, with ``X-Linked-Etag`` (the sha256) and
``X-Linked-Size``. No Xet headers are ever sent, so downloads use plain HTTP.

It also accepts what ``HfApi.create_repo``, ``create_branch`` and ``create_commit`` send
(files committed inline, upload mode "regular"), so pushes can be tested end to end.

Usage::

    with FakeHub({"org/tiny": {"config.json": b"{}", "model.safetensors": data}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        ...
        assert hub.request_count() == 2
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# Served through the CDN redirect, as the real Hub does for files stored with LFS.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_sha(files: dict[str, bytes], parent: str = "") -> str:
    """A deterministic 40-hex commit id for a set of files."""
    hasher = hashlib.sha1(parent.encode())
    for name in sorted(files):
        hasher.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return hasher.hexdigest()


class FakeHub:
    """Two loopback servers (Hub API + CDN) serving ``repos`` (repo id -> filename -> bytes).

    Each repository starts with one commit on ``main``. :meth:`files` returns the live dict of
    a commit, so a test can tamper with a file without changing the commit id.

    Attributes:
        requests: Every request received, as ``(method, path)``, in order.
        endpoint: The base URL to put in ``HF_ENDPOINT``.
        commits: Repo id -> commit id -> files. ``refs``: repo id -> branch -> commit id.
        pushed: The parsed ndjson payloads received by the commit endpoint.
        authorizations: The ``Authorization`` header of every request (None when absent).
    """

    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.commits: dict[str, dict[str, dict[str, bytes]]] = {}
        self.refs: dict[str, dict[str, str]] = {}
        for repo_id, files in repos.items():
            self._add_commit(repo_id, dict(files), branch="main")
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        self.pushed: list[list[dict]] = []
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=False))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=True))
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for server in (self._hub, self._cdn)
        ]
        for thread in self._threads:
            thread.start()
        self._running = True

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut both servers down and free their ports (idempotent)."""
        if not self._running:
            return
        self._running = False
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def request_count(self) -> int:
        """How many requests both servers have received so far."""
        with self._lock:
            return len(self.requests)

    def commit_of(self, repo_id: str, revision: str = "main") -> str:
        """The commit id a branch (or commit id) names."""
        return self.refs[repo_id].get(revision, revision)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The live file dict of a commit (mutate it to tamper with served content)."""
        return self.commits[repo_id][self.commit_of(repo_id, revision)]

    def _add_commit(self, repo_id: str, files: dict[str, bytes], branch: str) -> str:
        parent = self.refs.get(repo_id, {}).get(branch, "")
        sha = commit_sha(files, parent)
        self.commits.setdefault(repo_id, {})[sha] = files
        self.refs.setdefault(repo_id, {})[branch] = sha
        return sha

    def _blob(self, sha256: str) -> bytes | None:
        for commits in self.commits.values():
            for files in commits.values():
                for data in files.values():
                    if hashlib.sha256(data).hexdigest() == sha256:
                        return data
        return None


def _handler(hub: FakeHub, *, cdn: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def do_HEAD(self) -> None:
            self._dispatch(send_body=False)

        def do_GET(self) -> None:
            self._dispatch(send_body=True)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            self._record()
            path = unquote(urlsplit(self.path).path)
            if cdn:
                return self._reply(405)
            if path == "/api/repos/create":
                return self._create_repo(json.loads(body))
            parts = path.split("/")
            # /api/models/{org}/{name}/{action}/{revision}
            if len(parts) == 7 and parts[:3] == ["", "api", "models"]:
                repo_id, action, revision = f"{parts[3]}/{parts[4]}", parts[5], parts[6]
                if repo_id not in hub.commits:
                    return self._reply(404, headers={"X-Error-Code": "RepoNotFound"})
                if action == "preupload":
                    files = [
                        {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for item in json.loads(body)["files"]
                    ]
                    return self._json({"files": files})
                if action == "commit":
                    return self._commit(repo_id, revision, body)
                if action == "branch":
                    hub.refs[repo_id].setdefault(revision, hub.refs[repo_id]["main"])
                    return self._json({})
            self._reply(404)

        def _record(self) -> None:
            with hub._lock:
                hub.requests.append((self.command, self.path))
                hub.authorizations.append(self.headers.get("Authorization"))

        def _dispatch(self, *, send_body: bool) -> None:
            self._record()
            path = unquote(urlsplit(self.path).path)
            if cdn:
                data = hub._blob(path.rsplit("/", 1)[-1]) if path.startswith("/cdn/") else None
                if data is None:
                    return self._reply(404)
                return self._reply(200, data if send_body else b"", length=len(data))
            if path.startswith("/api/models/"):
                return self._tree(path.split("/")[3:])
            head, sep, tail = path.lstrip("/").partition("/resolve/")
            revision, _, filename = tail.partition("/")
            if not sep or head not in hub.commits:
                return self._reply(404, headers={"X-Error-Code": "RepoNotFound"})
            commit = hub.commit_of(head, revision)
            if commit not in hub.commits[head]:
                return self._reply(404, headers={"X-Error-Code": "RevisionNotFound"})
            files = hub.commits[head][commit]
            if filename not in files:
                return self._reply(404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
            data = files[filename]
            headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}
            if filename.endswith(LFS_SUFFIXES):
                sha256 = hashlib.sha256(data).hexdigest()
                headers |= {
                    "X-Linked-Etag": f'"{sha256}"',
                    "X-Linked-Size": str(len(data)),
                    "Location": f"{hub.cdn_endpoint}/cdn/{sha256}",
                }
                return self._reply(302, headers=headers)
            self._reply(200, data if send_body else b"", headers=headers, length=len(data))

        def _tree(self, parts: list[str]) -> None:
            """``/api/models/{org}/{name}/tree/{revision}/{folder}``: the files directly in a folder.

            ``transformers`` lists ``additional_chat_templates/`` this way when it loads a processor;
            an absent folder is a 404 ``EntryNotFound``, as on the real Hub.
            """
            if len(parts) < 4 or parts[2] != "tree":
                return self._reply(404)
            repo_id, revision, folder = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]).strip("/")
            if repo_id not in hub.commits:
                return self._reply(404, headers={"X-Error-Code": "RepoNotFound"})
            commit = hub.commit_of(repo_id, revision)
            prefix = f"{folder}/" if folder else ""
            entries = [
                {"type": "file", "path": name, "oid": git_blob_sha1(data), "size": len(data)}
                for name, data in sorted(hub.commits[repo_id].get(commit, {}).items())
                if name.startswith(prefix) and "/" not in name[len(prefix):]
            ]
            if not entries:
                return self._reply(404, headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
            self._reply(200, json.dumps(entries).encode(), headers={"Content-Type": "application/json"})

        def _create_repo(self, payload: dict) -> None:
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            if repo_id in hub.commits:
                body = {"error": "You already created this model repo", "url": f"{hub.endpoint}/{repo_id}"}
                return self._reply(409, json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            hub.commits[repo_id] = {}
            hub.refs[repo_id] = {}
            hub._add_commit(repo_id, {}, branch="main")
            self._json({"url": f"{hub.endpoint}/{repo_id}"})

        def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            hub.pushed.append(lines)
            files = dict(hub.files(repo_id, revision))
            for line in lines:
                if line["key"] == "file":
                    files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            sha = hub._add_commit(repo_id, files, branch=revision)
            self._json({"commitUrl": f"{hub.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha})

        def _json(self, payload: dict) -> None:
            self._reply(200, json.dumps(payload).encode(), headers={"Content-Type": "application/json"})

        def _reply(
            self, status: int, body: bytes = b"", *, headers: dict[str, str] | None = None, length: int | None = None
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler
