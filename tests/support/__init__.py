"""Test infrastructure shared by the test folders and the benchmarks (``tests.support.*``).

* :mod:`.servers`: SeaweedFS and moto on free loopback ports; :mod:`.gcs_server`:
  fake-gcs-server.
* :mod:`.netguard`: the guard that keeps the test run on the loopback interface.
* :mod:`.fixture_helpers`, :mod:`.s3_fixtures`: fixture bodies and S3 fixtures the conftests
  share.
* :mod:`.jupyter_procs`: Jupyter servers as real processes.
"""
