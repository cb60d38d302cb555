"""SSH into the guest (kernlab.vm.ssh) without a guest: the pinned host key, the command-size guard dropbear needs,
the errors said in words, and a dropped connection made again once, on connections played by stand-ins. (Over a
real guest's dropbear: tests/vm/test_vm.py.)"""

from __future__ import annotations

import base64
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernlab.errors import KernlabError
from kernlab.vm.ssh import MAX_COMMAND_BYTES, GuestSSH, describe


def public_line(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    """A client key as kernlab makes one for a lab (kernlab.guest.image): ed25519, OpenSSH format."""
    path = tmp_path / "client_ed25519"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    return path


@pytest.fixture
def guest(client_key: Path) -> GuestSSH:
    """A connection object to a guest that is never reached: nothing here opens a socket."""
    return GuestSSH(40022, client_key, public_line(Ed25519PrivateKey.generate()) + " kernlab-lab")


def test_the_pinned_host_key_is_the_guest_s_ed25519_key(client_key: Path) -> None:
    host = public_line(Ed25519PrivateKey.generate())
    pinned = GuestSSH(40022, client_key, host)
    assert pinned.host_key.get_name() == "ssh-ed25519" and pinned.host_key.asbytes() == base64.b64decode(
        host.split()[1])
    known = pinned._new_client().get_host_keys().lookup("[127.0.0.1]:40022")
    assert known is not None and list(known.values()) == [pinned.host_key]  # the only key accepted
    with pytest.raises(KernlabError, match=r"^guest host key: expected ssh-ed25519, got ssh-rsa$"):
        GuestSSH(40022, client_key, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ kernlab-lab")


def test_a_command_longer_than_dropbear_takes_is_refused_before_it_is_sent(guest: GuestSSH) -> None:
    with pytest.raises(KernlabError) as refused:
        guest.run("x" * (MAX_COMMAND_BYTES + 1), what="the window script")
    assert str(refused.value) == (f"guest command 'the window script' is {MAX_COMMAND_BYTES + 1:,} bytes, more than "
                                  f"the guest's dropbear takes ({MAX_COMMAND_BYTES:,}): send it as stdin")
    # bytes, not characters: 4,501 two-byte characters are over the limit
    wide = "é" * (MAX_COMMAND_BYTES // 2 + 1)
    assert len(wide) < MAX_COMMAND_BYTES
    with pytest.raises(KernlabError, match=rf"^guest command '{'é' * 60}' is {MAX_COMMAND_BYTES + 2:,} bytes"):
        guest.run(wide)
    # at the limit the command goes on to the connection, which this one has not made
    with pytest.raises(KernlabError, match=r"^ssh: not connected$"):
        guest.run("x" * MAX_COMMAND_BYTES)


def test_errors_are_said_in_words() -> None:
    assert describe(EOFError()) == "the guest end closed the connection (EOF)"  # paramiko's, with no words
    assert describe(EOFError("Channel closed.")) == "Channel closed."
    assert describe(ConnectionRefusedError(111, "Connection refused")) == "[Errno 111] Connection refused"
    assert describe(TimeoutError()) == "TimeoutError"


class PlayedClient:
    """A paramiko client whose connect fails as it is told, and whose transport is closed."""

    made: list[PlayedClient] = []

    def __init__(self, error: Exception | None) -> None:
        self.error, self.closed, self.connects = error, False, 0
        PlayedClient.made.append(self)

    def connect(self, *args: object, **kwargs: object) -> None:
        self.connects += 1
        if self.error is not None:
            raise self.error

    def get_transport(self) -> None:
        return None  # as paramiko's, once the connection is gone

    def close(self) -> None:
        self.closed = True


def test_a_guest_that_does_not_answer_is_one_line_once_the_deadline_passes(guest: GuestSSH,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    PlayedClient.made = []
    monkeypatch.setattr(guest, "_new_client", lambda: PlayedClient(ConnectionRefusedError(111, "Connection refused")))
    with pytest.raises(KernlabError, match=r"^ssh to 127.0.0.1:40022 did not answer within 1 s: \[Errno 111\] "
                                           r"Connection refused$"):
        guest.connect(deadline_s=1.0)
    assert len(PlayedClient.made) > 2 and all(client.closed for client in PlayedClient.made)  # retried, none left
    assert guest.client is None and guest.generation == 0


def test_a_host_key_that_is_not_the_pinned_one_is_refused_at_once(guest: GuestSSH,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    PlayedClient.made = []
    other = paramiko.Ed25519Key(data=base64.b64decode(public_line(Ed25519PrivateKey.generate()).split()[1]))
    monkeypatch.setattr(guest, "_new_client",
                        lambda: PlayedClient(paramiko.BadHostKeyException("127.0.0.1", other, guest.host_key)))
    with pytest.raises(KernlabError, match=r"^guest host key does not match the pinned key: "):
        guest.connect(deadline_s=30.0)
    assert len(PlayedClient.made) == 1 and PlayedClient.made[0].closed  # no retry: a wrong key stays wrong


def test_a_dropped_connection_is_made_again_once_then_the_command_fails_naming_itself(
        guest: GuestSSH, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads share one connection: only the first to notice a drop makes it again (closing it closes the others'
    channels); a guest whose new connection drops too fails the command, with its name and why."""
    PlayedClient.made = []

    def connect(deadline_s: float = 30.0) -> None:
        guest.client = PlayedClient(None)  # type: ignore[assignment]
        guest.generation += 1

    monkeypatch.setattr(guest, "connect", connect)
    guest.connect()
    first = guest.client
    guest._reconnect(seen_generation=0)  # a thread that saw the connection before this one: too late
    assert guest.client is first and guest.reconnects == 0
    with pytest.raises(KernlabError, match=r"^ssh: connection to the guest lost: sampling: the transport is closed$"):
        guest.run("cat /proc/vmstat", what="sampling")
    assert guest.reconnects == 1 and guest.generation == 2 and first.closed
    guest.close()
    assert guest.client is None and PlayedClient.made[-1].closed
