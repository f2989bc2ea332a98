"""The one way PRISM starts a child process: the npm commands (commands.py) and the indexer and
embedder (indexing.py).

A child gets an allow-listed environment: PATH, HOME, LANG, LC_*, TMPDIR, the names its config section
lists under `env`, and what the caller passes explicitly (the indexer's Cloudflare token and account).
Nothing else of the worker's environment reaches it: not Airflow's settings and secrets (AIRFLOW__*,
AIRFLOW_CONN_*, AIRFLOW_VAR_*), not cloud keys (AWS_*). `npm update` runs third-party install scripts.

Everything a child prints passes through Airflow's secrets masker (every registered secret: connection
passwords, masked Variables, mask_secret'ed values) before it is logged, returned (XCom) or raised
(alerts, reports, the dashboard).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import psutil
from airflow.sdk.log import redact as masker_redact  # the SDK's active masker (its log filter's)

log = logging.getLogger(__name__)

BASE_NAMES = frozenset({"PATH", "HOME", "LANG", "TMPDIR"})
BASE_PREFIXES = ("LC_",)
ENV_NAME = r"\A[A-Za-z_][A-Za-z0-9_]*\Z"  # what a config `env` entry may be (the schema checks it)
REDACTED = "***"
OUTPUT_TAIL = 4000  # what of a child's output is kept: XCom and alerts need the end, not all of it
TIMED_OUT = 124  # the exit code `timeout` uses
NOT_FOUND = 127  # a shell's "command not found"


@dataclass(frozen=True)
class Finished:
    """A child that ran: its exit code, its stdout, and stdout+stderr, all already redacted."""

    argv: list[str]
    returncode: int
    stdout: str
    output: str


def child_env(
    names: Iterable[str] = (), explicit: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child: the allow-list, the `names` the config gives (when set here) and
    `explicit` values. Anything else, AIRFLOW* and AWS_* included, stays out."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k in BASE_NAMES or k.startswith(BASE_PREFIXES)}
    for name in names:
        if not re.match(ENV_NAME, name):
            raise ValueError(f"not an environment variable name: {name!r}")
        if name in environ:
            env[name] = environ[name]
    env.update(explicit or {})
    return env


def _forms(secret: str) -> list[str]:
    """How a secret can appear in text: raw, inside a JSON string, in a URL; longest first."""
    return sorted({secret, json.dumps(secret)[1:-1], quote(secret, safe="")}, key=len, reverse=True)


def redact(value, *secrets: str | None):
    """`value` (text, or a dict/list such as a parsed summary) with every secret Airflow's masker knows
    replaced, and each of `secrets` in every form it can take."""
    if isinstance(value, str):
        for secret in filter(None, secrets):
            for form in _forms(secret):
                value = value.replace(form, REDACTED)
    elif secrets:  # a structure: redact its strings the same way, then let the masker walk it
        value = json.loads(redact(json.dumps(value), *secrets))
    return masker_redact(value)


def run(
    argv: list[str],
    cwd,
    *,
    env_names: Iterable[str] = (),
    explicit_env: Mapping[str, str] | None = None,
    secrets: Iterable[str | None] = (),
    timeout: float | None = None,
) -> Finished:
    """Run `argv` in `cwd` with child_env(); nothing it prints leaves here unredacted. A program that
    does not exist is exit code 127, a timeout 124 (the output so far is kept)."""
    secrets = tuple(s for s in secrets if s)
    env = child_env(env_names, explicit_env)
    log.info("running %s in %s (environment: %s)", redact(" ".join(argv), *secrets), cwd, ", ".join(sorted(env)))
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        )
    except FileNotFoundError as exc:
        code, stdout, stderr = NOT_FOUND, "", str(exc)
    else:
        with proc:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)  # npm's own children too: they hold the pipes open
                stdout, stderr = proc.communicate()
                code, stderr = TIMED_OUT, stderr + f"\ntimed out after {timeout} s"
    # Redacted before cutting, so no cut can leave part of a secret.
    return Finished(
        argv=[redact(a, *secrets) for a in argv],
        returncode=code,
        stdout=redact(stdout, *secrets),
        output=redact((stdout + stderr), *secrets),
    )


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        family = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def tail(text: str, size: int = OUTPUT_TAIL) -> str:
    return text[-size:]
