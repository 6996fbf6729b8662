"""bpfmap export seen from outside: its config written to a file, the samples of a
parsed family, the exporter serving on a free loopback port (Exporter), a real
Prometheus server scraping it (Prometheus)."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from . import BPFMAP, need_tool


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "export.yaml"
    path.write_text(text)
    return str(path)


def samples(family, suffix: str = "") -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix}


def parsed(data: str, family: bool = False) -> list:
    """An exposition's samples, sorted: (name, labels, value), NaN as "nan" (Prometheus
    keeps float64); with ``family``, each led by its family's name, type and help."""
    out = []
    for fam in text_string_to_metric_families(data):
        for s in fam.samples:
            v = "nan" if math.isnan(s.value) else float(s.value)
            head = (fam.name, fam.type, fam.documentation) if family else ()
            out.append((*head, s.name, tuple(sorted(s.labels.items())), v))
    return sorted(out, key=repr)


def client_exposition(fams) -> str:
    """What prometheus-client writes for bpfmap's families (the oracle of our exposition)."""
    from bpfmap.export.exposition import to_client

    class Collector:
        def collect(self):
            return [to_client(f) for f in fams]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """`bpfmap export --listen` in the background; always stopped."""

    def __init__(self, config: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.proc = subprocess.Popen(
            [*BPFMAP, "export", config, "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                self.get()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(  # noqa: B904 (the OSError says nothing more)
                        f"exporter did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
                    )
                time.sleep(0.1)

    def get(self, accept: str | None = None) -> tuple[str, str]:
        req = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode(), resp.headers["Content-Type"]

    def families(self) -> dict:
        return {f.name: f for f in text_string_to_metric_families(self.get()[0])}

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


class Prometheus:
    """A Prometheus server on 127.0.0.1 with a temp config and TSDB, scraping one target
    every second; always stopped."""

    def __init__(self, tmp_path, target: str) -> None:
        binary = need_tool("prometheus")
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: bpfmap\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        (tmp_path / "tsdb").mkdir()
        self.log = open(tmp_path / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(lambda: self._get("/-/ready") is not None, "ready", 30)

    def _get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            return None

    def query(self, expr: str) -> list:
        text = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if text is None:
            return []
        data = json.loads(text)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def wait_for(self, cond, what: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}")
            if cond():
                return
            time.sleep(0.25)
        raise AssertionError(f"prometheus: {what} not within {seconds} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
