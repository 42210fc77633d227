"""`chatsphere verify RECEIPT.json --public-key KEY.pem`: offline, exit 0 / 1 / 2, and no boto3 loaded."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import chatsphere
from chatsphere.cli import main
from chatsphere.logic import evidence, merkle

TENANT = "tn_cli"
SIZE = 5


def _receipt(key: ec.EllipticCurvePrivateKey, seq: int = 3) -> dict[str, Any]:
    entries = [
        {
            "seq": n,
            "entry_id": f"le_{n}",
            "tenant_id": TENANT,
            "type": "deletion.receipt" if n == seq else "request.created",
            "at": f"2026-12-01T10:00:0{n}Z",
            "data": {"request_id": "rq_9", "counts": {"profiles": 1}} if n == seq else {"request_id": f"rq_{n}"},
        }
        for n in range(SIZE)
    ]
    frontier, nodes = merkle.append(0, [], [evidence.entry_leaf(e) for e in entries])
    head = {
        "tenant_id": TENANT,
        "tree_size": SIZE,
        "root_hash": merkle.frontier_root(SIZE, frontier).hex(),
        "timestamp": "2026-12-03T14:00:00Z",
    }
    signature = key.sign(evidence.tree_head_message(head), ec.ECDSA(hashes.SHA256()))
    return {
        "format": "chatsphere-receipt/1",
        "entry": entries[seq],
        "leaf_index": seq,
        "inclusion_proof": [h.hex() for h in merkle.inclusion_proof(seq, SIZE, nodes)],
        "tree_head": head,
        "signature": base64.b64encode(signature).decode(),
        "key_id": "alias/chatsphere-ledger",
        "signing_algorithm": "ECDSA_SHA_256",
    }


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(_receipt(key), indent=2))
    pem = tmp_path / "ledger.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return receipt, pem


def test_a_good_receipt_exits_0(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    receipt, pem = files
    assert main(["verify", str(receipt), "--public-key", str(pem)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["ok", "format"],
        ["ok", "entry"],
        ["ok", "inclusion"],
        ["ok", "signature"],
    ]
    assert lines[4].startswith(f"The ledger of tenant {TENANT}, at size {SIZE}, signed at 2026-12-03T14:00:00Z")
    assert "includes entry #3 (deletion.receipt at 2026-12-01T10:00:03Z): Request rq_9" in lines[4]


def test_a_changed_receipt_exits_1_naming_the_check(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    receipt, pem = files
    document = json.loads(receipt.read_text())
    document["entry"]["data"]["counts"]["profiles"] = 0
    receipt.write_text(json.dumps(document))
    assert main(["verify", str(receipt), "--public-key", str(pem)]) == 1
    out = capsys.readouterr().out
    assert "FAILED   inclusion" in out and "not run  signature" in out
    assert out.splitlines()[-1] == "Not verified: the inclusion check failed."


@pytest.mark.parametrize("missing", ["receipt", "key"])
def test_a_missing_file_exits_2(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    receipt, pem = files
    absent = tmp_path / "absent"
    args = ["verify", str(absent if missing == "receipt" else receipt), "--public-key"]
    args.append(str(absent if missing == "key" else pem))
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"chatsphere: cannot read {absent}")


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", b""])
def test_a_receipt_that_is_not_json_exits_2(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    receipt, pem = files
    receipt.write_bytes(content)
    assert main(["verify", str(receipt), "--public-key", str(pem)]) == 2
    assert capsys.readouterr().err == f"chatsphere: {receipt} is not JSON\n"


def test_verify_loads_no_boto3_and_needs_no_aws(files: tuple[Path, Path]) -> None:
    receipt, pem = files
    functions = str(Path(chatsphere.__file__).resolve().parents[1])
    script = (
        "import sys\n"
        "from chatsphere.cli import main\n"
        f"code = main(['verify', {str(receipt)!r}, '--public-key', {str(pem)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
        "assert not loaded, loaded\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": functions},  # no AWS variable at all
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"The ledger of tenant {TENANT}")
