"""`cabinlift models fetch` against a real HTTP server on 127.0.0.1 serving a small file: a good
checksum, a wrong one (the download removed, one line), a connection cut half-way (resumed
with a Range request), a partial file from an earlier call (resumed), and no server at all."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from cabinlift import cli
from cabinlift.errors import CabinliftError
from cabinlift.fetch import OFFICIAL, Checkpoint, fetch

PAYLOAD = bytes(range(256)) * 1000  # 256 kB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring ``Range: bytes=N-``; while ``server.cuts`` > 0 a
    response stops after half of what it announced and closes the connection."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.ranges.append(self.headers.get("Range"))
        start = 0
        if rng := self.headers.get("Range"):
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cuts > 0:
            self.server.cuts -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.ranges, srv.cuts = [], 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/mmpose/v1/model-{DIGEST[:8]}.pth"


def test_a_good_checksum_gives_the_file(server, tmp_path):
    dest = tmp_path / "ext" / "model.pth"
    assert fetch(Checkpoint(_url(server), DIGEST), dest, progress=False, log=lambda _: None) == dest
    assert dest.read_bytes() == PAYLOAD and server.ranges == [None]
    assert not (tmp_path / "ext" / "model.pth.part").exists()
    fetch(Checkpoint(_url(server), DIGEST[:8]), dest, progress=False, log=lambda _: None)
    assert server.ranges == [None]  # present and checked: nothing downloaded


def test_a_wrong_checksum_removes_the_download(server, tmp_path):
    dest = tmp_path / "model.pth"
    with pytest.raises(CabinliftError) as err:
        fetch(Checkpoint(_url(server), "deadbeef"), dest, progress=False, log=lambda _: None)
    assert str(err.value) == (f"{_url(server)}: SHA-256 {DIGEST} does not start with deadbeef: "
                              f"the download was removed")
    assert list(tmp_path.iterdir()) == []


def test_a_connection_cut_half_way_is_resumed(server, tmp_path):
    server.cuts = 1
    dest, lines = tmp_path / "model.pth", []
    fetch(Checkpoint(_url(server), DIGEST), dest, progress=False, log=lines.append)
    half = len(PAYLOAD) // 2
    assert server.ranges == [None, f"bytes={half}-"]  # the second request asks for the rest
    assert dest.read_bytes() == PAYLOAD
    assert lines[0] == f"model-{DIGEST[:8]}.pth: connection dropped after {half} bytes; resuming"


def test_a_partial_file_of_an_earlier_call_is_resumed(server, tmp_path):
    dest = tmp_path / "model.pth"
    (tmp_path / "model.pth.part").write_bytes(PAYLOAD[:1000])
    fetch(Checkpoint(_url(server), DIGEST), dest, progress=False, log=lambda _: None)
    assert server.ranges == ["bytes=1000-"] and dest.read_bytes() == PAYLOAD


def test_every_try_cut_keeps_the_bytes_and_says_to_run_again(server, tmp_path):
    server.cuts = 3
    dest = tmp_path / "model.pth"
    with pytest.raises(CabinliftError) as err:
        fetch(Checkpoint(_url(server), DIGEST), dest, progress=False, log=lambda _: None)
    kept = (tmp_path / "model.pth.part").stat().st_size
    assert kept == len(PAYLOAD) - len(PAYLOAD) // 8  # 1/2, then 1/4, then 1/8 missing
    assert str(err.value).endswith(f"the connection dropped 3 times ({kept} bytes kept in "
                                   f"{tmp_path / 'model.pth.part'}); run the command again to resume")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_one_line_with_the_address_and_the_place(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/m.pth"
    with pytest.raises(CabinliftError) as err:
        fetch(Checkpoint(url, DIGEST), tmp_path / "m.pth", progress=False, log=lambda _: None)
    text = str(err.value)
    assert text.startswith(f"cannot reach {url} (") and "\n" not in text
    assert text.endswith(f"download it elsewhere and put it at {tmp_path / 'm.pth'}")


def test_cli_fetches_the_checkpoints_params_name_from_a_mirror(tmp_path, monkeypatch, capsys):
    """The command reads both checkpoint paths of params.yaml and asks the mirror for the
    official paths below it (no server there: the offline line names both)."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    mirror = f"http://127.0.0.1:{_closed_port()}"
    assert cli.main(["models", "fetch", "--mirror", mirror]) == 1
    err = capsys.readouterr().err
    first = next(iter(OFFICIAL.values()))
    assert f"cannot reach {mirror}/mmdetection/v2.0/faster_rcnn/" in err
    assert f"put it at data/external/{first.name}" in err
