"""Optional dependencies missing: a clear error that names the extra to install."""

from __future__ import annotations

import subprocess
import sys


def test_gcs_without_gcsfs_names_the_extra() -> None:
    code = "import sys; sys.modules['gcsfs'] = None; from s3contents.gcs import GCSContentsManager"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "ImportError: Google Cloud Storage needs gcsfs" in done.stderr
    assert "'.[gcs]'" in done.stderr


def test_s3_needs_no_gcsfs() -> None:
    code = "import sys; sys.modules['gcsfs'] = None; from s3contents import S3ContentsManager"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_doctor_loads_no_provider_sdk() -> None:
    """``s3contents doctor`` on GCS does not load botocore (nor doctor on S3 gcsfs): the
    doctor itself imports only the port and the redaction rules."""
    code = (
        "import sys, s3contents.doctor; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'botocore', 'aiobotocore', 'gcsfs', 'jupyter_server'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
