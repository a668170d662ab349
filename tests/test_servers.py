"""Tests of the test infrastructure itself: the S3 servers, the fixtures and the run guards.

Besides checking that each server works and enforces its credentials, a few tests pin down
how SeaweedFS and moto differ where the storage code has to care (emptied folders, conditional
copies); if an upgrade changes one of those, the test says so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.netguard import (
    NonLoopbackNetworkError,
    check_address,
    is_loopback_host,
    loopback_guard_installed,
    loopback_violations,
)
from tests.support.servers import S3Server, start_moto, start_seaweedfs

REPO = Path(__file__).resolve().parent.parent


def _status(error: ClientError) -> int:
    return int(error.response["ResponseMetadata"]["HTTPStatusCode"])


def _listing(s3: Any, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    keys = [item["Key"] for item in page.get("Contents", [])]
    prefixes = [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    return keys, prefixes


@pytest.fixture
def server_bucket(s3_server: S3Server) -> Iterator[str]:
    name = s3_server.make_bucket()
    yield name
    s3_server.remove_bucket(name)


def test_put_get_list_with_delimiter(s3_server: S3Server, server_bucket: str) -> None:
    s3 = s3_server.admin
    for key in ("top.txt", "dir/a.ipynb", "dir/b.txt", "dir/sub/c.txt", "other/d.txt"):
        s3.put_object(Bucket=server_bucket, Key=key, Body=key.encode())

    assert s3.get_object(Bucket=server_bucket, Key="dir/a.ipynb")["Body"].read() == b"dir/a.ipynb"
    assert _listing(s3, server_bucket, "") == (["top.txt"], ["dir/", "other/"])
    assert _listing(s3, server_bucket, "dir/") == (["dir/a.ipynb", "dir/b.txt"], ["dir/sub/"])
    everything = s3.list_objects_v2(Bucket=server_bucket)
    assert [item["Key"] for item in everything["Contents"]] == [
        "dir/a.ipynb",
        "dir/b.txt",
        "dir/sub/c.txt",
        "other/d.txt",
        "top.txt",
    ]


def test_create_only_put_answers_412(s3_server: S3Server, server_bucket: str) -> None:
    s3 = s3_server.admin
    s3.put_object(Bucket=server_bucket, Key="n.ipynb", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=server_bucket, Key="n.ipynb", Body=b"second", IfNoneMatch="*")
    assert _status(refused.value) == 412
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=server_bucket, Key="n.ipynb")["Body"].read() == b"first"


def test_if_match_put_answers_412_on_a_stale_etag(s3_server: S3Server, server_bucket: str) -> None:
    s3 = s3_server.admin
    etag = s3.put_object(Bucket=server_bucket, Key="m.txt", Body=b"1")["ETag"]
    s3.put_object(Bucket=server_bucket, Key="m.txt", Body=b"2", IfMatch=etag)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=server_bucket, Key="m.txt", Body=b"3", IfMatch=etag)
    assert _status(refused.value) == 412
    assert s3.get_object(Bucket=server_bucket, Key="m.txt")["Body"].read() == b"2"


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_wrong_credentials_are_refused(s3_server: S3Server, server_bucket: str, wrong: str) -> None:
    impostor = S3Server(
        name=s3_server.name,
        endpoint_url=s3_server.endpoint_url,
        access_key_id="AKIAWRONGWRONGWRONG1" if wrong == "key" else s3_server.access_key_id,
        secret_access_key="not-the-secret" if wrong == "secret" else s3_server.secret_access_key,
    )
    s3 = impostor.client()
    try:
        for attempt in (
            lambda: s3.list_objects_v2(Bucket=server_bucket),
            lambda: s3.put_object(Bucket=server_bucket, Key="intruder.txt", Body=b"x"),
        ):
            with pytest.raises(ClientError) as refused:
                attempt()
            assert _status(refused.value) == 403
    finally:
        s3.close()
    listed = s3_server.admin.list_objects_v2(Bucket=server_bucket)
    assert listed["KeyCount"] == 0


def _listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket that process ``pid`` listens on, from /proc."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_seaweedfs_listens_on_loopback_only(seaweedfs: S3Server) -> None:
    assert seaweedfs.pid is not None
    listening = _listening_addresses(seaweedfs.pid)
    s3_port = int(seaweedfs.endpoint_url.rsplit(":", 1)[1])
    assert ("127.0.0.1", s3_port) in listening
    # master, volume, filer, s3, iceberg, lance and admin: HTTP and gRPC for most of them
    assert len(listening) >= 10
    assert {address for address, _ in listening} == {"127.0.0.1"}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_moto_listens_on_loopback_only(moto_s3: S3Server) -> None:
    assert moto_s3.pid is not None
    listening = _listening_addresses(moto_s3.pid)
    port = int(moto_s3.endpoint_url.rsplit(":", 1)[1])
    assert listening == [("127.0.0.1", port)]


def test_emptied_folder_listing_differs(s3_server: S3Server, server_bucket: str) -> None:
    """moto forgets a prefix once its last object goes; SeaweedFS keeps it as a folder.

    SeaweedFS stores folders as real directories: after ``d/sub/x`` is deleted, ``d/sub/``
    is still listed as a common prefix and even answers HEAD ``d/sub/`` with 200
    (``application/x-directory``) until ``d/sub/`` itself is deleted.
    """
    s3 = s3_server.admin
    s3.put_object(Bucket=server_bucket, Key="d/keep.txt", Body=b"1")
    s3.put_object(Bucket=server_bucket, Key="d/sub/x.txt", Body=b"1")
    s3.delete_object(Bucket=server_bucket, Key="d/sub/x.txt")
    listing = _listing(s3, server_bucket, "d/")
    if s3_server.name == "moto":
        assert listing == (["d/keep.txt"], [])
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=server_bucket, Key="d/sub/")
        assert _status(missing.value) == 404
    else:
        assert listing == (["d/keep.txt"], ["d/sub/"])
        head = s3.head_object(Bucket=server_bucket, Key="d/sub/")
        assert head["ContentLength"] == 0
        s3.delete_object(Bucket=server_bucket, Key="d/sub/")
        assert _listing(s3, server_bucket, "d/") == (["d/keep.txt"], [])


def test_copy_object_if_none_match(s3_server: S3Server, server_bucket: str) -> None:
    """SeaweedFS refuses a CopyObject onto an existing key with If-None-Match: * (412);
    moto ignores the header and overwrites the target."""
    s3 = s3_server.admin
    s3.put_object(Bucket=server_bucket, Key="src.txt", Body=b"source")
    s3.put_object(Bucket=server_bucket, Key="dst.txt", Body=b"target")
    source = {"Bucket": server_bucket, "Key": "src.txt"}
    s3.copy_object(Bucket=server_bucket, Key="new.txt", CopySource=source, IfNoneMatch="*")
    assert s3.get_object(Bucket=server_bucket, Key="new.txt")["Body"].read() == b"source"
    if s3_server.name == "seaweedfs":
        with pytest.raises(ClientError) as refused:
            s3.copy_object(Bucket=server_bucket, Key="dst.txt", CopySource=source, IfNoneMatch="*")
        assert _status(refused.value) == 412
        assert s3.get_object(Bucket=server_bucket, Key="dst.txt")["Body"].read() == b"target"
    else:
        s3.copy_object(Bucket=server_bucket, Key="dst.txt", CopySource=source, IfNoneMatch="*")
        assert s3.get_object(Bucket=server_bucket, Key="dst.txt")["Body"].read() == b"source"


def test_bucket_fixture_gives_an_empty_bucket_of_its_own(seaweedfs: S3Server, bucket: str) -> None:
    assert bucket.startswith("t-")
    names = [item["Name"] for item in seaweedfs.admin.list_buckets()["Buckets"]]
    assert bucket in names
    assert seaweedfs.admin.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_s3_config_reaches_the_server(seaweedfs: S3Server, s3_config: dict[str, str]) -> None:
    assert set(s3_config) == {
        "bucket",
        "prefix",
        "endpoint_url",
        "access_key_id",
        "secret_access_key",
        "region_name",
    }
    assert s3_config["endpoint_url"].startswith("http://127.0.0.1:")
    assert s3_config["prefix"].startswith("t/")
    client = S3Server(
        name="check",
        endpoint_url=s3_config["endpoint_url"],
        access_key_id=s3_config["access_key_id"],
        secret_access_key=s3_config["secret_access_key"],
        region_name=s3_config["region_name"],
    ).client()
    try:
        key = f"{s3_config['prefix']}/hello.txt"
        client.put_object(Bucket=s3_config["bucket"], Key=key, Body=b"hello")
        assert seaweedfs.admin.get_object(Bucket=s3_config["bucket"], Key=key)["Body"].read() == (
            b"hello"
        )
    finally:
        client.close()


@pytest.mark.parametrize("start", [start_seaweedfs, start_moto], ids=["seaweedfs", "moto"])
def test_stop_ends_the_process_and_removes_its_files(start: Any) -> None:
    server = start()
    pid, data_dir = server.pid, server.data_dir
    assert pid is not None and data_dir is not None and data_dir.is_dir()
    ports = [port for _, port in _listening_addresses(pid)] if Path("/proc").is_dir() else []
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not data_dir.exists()
    assert server.pid is None
    for port in ports:
        assert not list(Path("/tmp").glob(f"seaweedfs-*-{port}.sock"))
    server.stop()  # a second stop is harmless


def test_network_guard_refuses_non_loopback_addresses() -> None:
    # Checked first, so that nothing below can leave the machine if the guard were off.
    assert loopback_guard_installed()
    for host in ("127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1", "localhost", "0.0.0.0"):
        assert is_loopback_host(host), host
    for host in ("192.0.2.1", "10.0.0.1", "169.254.169.254", "example.invalid", "2001:db8::1"):
        assert not is_loopback_host(host), host
    seen = len(loopback_violations)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The check alone, on a socket never connected: nothing leaves the machine even if
        # the guard were broken.  192.0.2.1 is TEST-NET-1.
        with pytest.raises(NonLoopbackNetworkError):
            check_address(sock, ("192.0.2.1", 80))
        check_address(sock, ("127.0.0.1", 80))
        check_address(sock, ("localhost", 80))
    with pytest.raises(NonLoopbackNetworkError):
        socket.getaddrinfo("example.invalid", 80)
    assert len(loopback_violations) == seen + 2
    del loopback_violations[seen:]


def test_a_run_that_collects_no_test_fails() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_servers.py",
            "-k",
            "no_test_has_this_name",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "no tests were collected" in result.stdout
