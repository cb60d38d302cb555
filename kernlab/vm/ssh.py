"""SSH into the guest with paramiko: pinned host key, key-only login, retries until a deadline."""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from kernlab.errors import KernlabError

log = logging.getLogger(__name__)
# dropbear's MAX_CMD_LEN (sysoptions.h): on a longer exec request Debian 12's dropbear ends the connection ("String
# too long"; a 9,736-byte window script, 2026-12-04).
MAX_COMMAND_BYTES = 9000


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
        self._key_file, self._host_public = client_key, host_public
        self.client_key = paramiko.Ed25519Key.from_private_key_file(str(client_key))
        kind, blob = host_public.split()[:2]
        if kind != "ssh-ed25519":
            raise KernlabError(f"guest host key: expected ssh-ed25519, got {kind}")
        self.host_key = paramiko.Ed25519Key(data=base64.b64decode(blob))
        self.client: paramiko.SSHClient | None = None
        # Threads share this connection; the lock guards (re)connecting, generation counts connections made.
        self._lock = threading.RLock()
        self.generation = 0
        self.reconnects = 0

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
                self.generation += 1
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

    def sibling(self, deadline_s: float = 30.0) -> GuestSSH:
        """A connection of its own to the same guest, for a thread that runs commands beside the main one.
        Debian 12's dropbear (2022.83) ends the whole connection on a channel opened while another channel's
        command exits ("Failed assertion (common-channel.c:705): `!channel->sent_close'", seen in a CI lab
        run's console: mkj/dropbear#321, fixed by #326 in 2024.86); one connection per thread never does that."""
        twin = GuestSSH(self.port, self._key_file, self._host_public, self.host)
        twin.connect(deadline_s)
        return twin

    def _client(self) -> tuple[paramiko.SSHClient, int]:
        with self._lock:
            if self.client is None:
                raise KernlabError("ssh: not connected")
            return self.client, self.generation

    def _reconnect(self, seen_generation: int) -> None:
        """Connect again, unless another thread sharing this connection (parallel workloads) already did since
        seen_generation: closing the client closes every channel on it, so only the first thread to notice may."""
        with self._lock:
            if self.generation != seen_generation:
                return
            if self.client is not None:
                self.client.close()
            self.client = None
            self.connect(deadline_s=30.0)
            self.reconnects += 1

    def _open_channel(self, what: str) -> paramiko.Channel:
        """A new channel; a connection that dropped (paramiko reads EOF) is made once more before giving up,
        since the guest behind it may well be alive (the caller then checks whether it is)."""
        for attempt in (1, 2):
            client, generation = self._client()
            transport = client.get_transport()
            try:
                if transport is None or not transport.is_active():
                    raise EOFError("the transport is closed")
                return transport.open_session(timeout=10)
            except (OSError, paramiko.SSHException, EOFError) as error:
                reason = describe(error)
                log.warning("ssh: connection to the guest lost (%s); %s", reason,
                            "connecting again" if attempt == 1 else "giving up")
                if attempt == 2:
                    raise KernlabError(f"ssh: connection to the guest lost: {what}: {reason}") from None
                self._reconnect(generation)
        raise AssertionError("unreachable")

    def run(self, command: str, *, timeout: float = 60.0, check: bool = True, stdin: bytes | None = None,
            what: str | None = None) -> CommandResult:
        """Run a shell command in the guest; with check, a non-zero exit raises with its stderr."""
        if len(command.encode()) > MAX_COMMAND_BYTES:  # dropbear would only drop the connection
            raise KernlabError(f"guest command {what or command[:60]!r} is {len(command.encode()):,} bytes, more "
                               f"than the guest's dropbear takes ({MAX_COMMAND_BYTES:,}): send it as stdin")
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
            if code == -1 and not channel.get_transport().is_active():  # paramiko's -1: closed without a status
                raise EOFError
        except TimeoutError:
            raise KernlabError(f"guest command timed out after {timeout:.0f} s: {what or command}") from None
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise KernlabError(f"ssh: connection to the guest lost during {what or command}: "
                               f"{describe(error)}") from None
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
        with self._lock:
            if self.client is not None:
                self.client.close()
                self.client = None


def describe(error: BaseException) -> str:
    """An exception as words: paramiko's EOFError (the peer closed the connection) has none of its own."""
    if isinstance(error, EOFError) and not str(error):
        return "the guest end closed the connection (EOF)"
    return str(error) or type(error).__name__
