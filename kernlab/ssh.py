"""SSH into the guest with paramiko: pinned host key, key-only login, retries until a deadline."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from kernlab.errors import KernlabError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


class GuestSSH:
    """One connection to the guest's dropbear as root."""

    def __init__(self, port: int, client_key: Path, host_public: str, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.client_key = paramiko.Ed25519Key.from_private_key_file(str(client_key))
        kind, blob = host_public.split()[:2]
        if kind != "ssh-ed25519":
            raise KernlabError(f"guest host key: expected ssh-ed25519, got {kind}")
        self.host_key = paramiko.Ed25519Key(data=base64.b64decode(blob))
        self.client: paramiko.SSHClient | None = None

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        # The only key accepted is the one baked into this lab's image.
        client.get_host_keys().add(f"[{self.host}]:{self.port}", "ssh-ed25519", self.host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    def connect(self, deadline_s: float = 30.0) -> None:
        """Connect, retrying with backoff until deadline_s have passed (the guest may still be starting)."""
        end = time.monotonic() + deadline_s
        delay = 0.1
        last: Exception | None = None
        while True:
            client = self._new_client()
            try:
                client.connect(self.host, self.port, username="root", pkey=self.client_key, look_for_keys=False,
                               allow_agent=False, timeout=5, banner_timeout=10, auth_timeout=10)
                self.client = client
                return
            except paramiko.BadHostKeyException as error:
                client.close()
                raise KernlabError(f"guest host key does not match the pinned key: {error}") from None
            except (OSError, paramiko.SSHException, EOFError) as error:
                client.close()
                last = error
            if time.monotonic() + delay > end:
                raise KernlabError(f"ssh to {self.host}:{self.port} did not answer within {deadline_s:.0f} s: {last}")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _client(self) -> paramiko.SSHClient:
        if self.client is None:
            raise KernlabError("ssh: not connected")
        return self.client

    def _open_channel(self, what: str) -> paramiko.Channel:
        """A new channel; a connection that dropped (paramiko reads EOF) is made once more before giving up,
        since the guest behind it may well be alive (the caller then checks whether it is)."""
        for attempt in (1, 2):
            transport = self._client().get_transport()
            try:
                if transport is None or not transport.is_active():
                    raise EOFError("the transport is closed")
                return transport.open_session(timeout=10)
            except (OSError, paramiko.SSHException, EOFError) as error:
                log.warning("ssh: connection to the guest lost (%s); %s", error or type(error).__name__,
                            "connecting again" if attempt == 1 else "giving up")
                if attempt == 2:
                    raise KernlabError(f"ssh: connection to the guest lost: {what}: "
                                       f"{error or type(error).__name__}") from None
                self.close()
                self.connect(deadline_s=30.0)
        raise AssertionError("unreachable")

    def run(self, command: str, *, timeout: float = 60.0, check: bool = True, stdin: bytes | None = None,
            what: str | None = None) -> CommandResult:
        """Run a shell command in the guest; with check, a non-zero exit raises with its stderr."""
        started = time.monotonic()
        log.debug("guest$ %s", command)
        channel = self._open_channel(what or command)
        channel.settimeout(timeout)
        try:
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            stdout, stderr = bytearray(), bytearray()
            while True:
                if channel.recv_ready():
                    stdout += channel.recv(65536)
                elif channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                elif channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                else:
                    if time.monotonic() - started > timeout:
                        raise TimeoutError
                    channel.status_event.wait(0.05)
            code = channel.recv_exit_status()
        except TimeoutError:
            raise KernlabError(f"guest command timed out after {timeout:.0f} s: {what or command}") from None
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise KernlabError(f"ssh: connection to the guest lost during {what or command}: "
                               f"{error or type(error).__name__}") from None
        finally:
            channel.close()
        result = CommandResult(command, code, stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                               time.monotonic() - started)
        if check and code != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise KernlabError(f"guest command failed (exit {code}): {what or command}: "
                               f"{detail[-1] if detail else 'no output'}")
        return result

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
