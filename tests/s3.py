"""A real S3 for the tests: moto's server, spoken to over HTTP as any S3-compatible store.

Not moto's in-process mock: django-storages and boto3 send real HTTP requests (signed, with
multipart bodies and presigned URLs) to a local server, so what runs is what runs against
MinIO or OSS in production. Each pytest process (each xdist worker) starts its own server on
a free port when a test first asks for S3 (tests/conftest.py's s3_server, session-scoped):
nothing to start beforehand, no port shared between workers. The session's bucket is made
then; each test that asks for `s3` (tests/conftest.py) finds it empty and the default storage
switched to S3 for that test only.
"""

import urllib.error
import urllib.request
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from config.storage import S3Storage

BUCKET = "anju-test"
REGION = "us-east-1"
# moto accepts any credentials; the storage signs with these as with real ones.
ACCESS_KEY = "anju-test-key"
SECRET_KEY = "anju-test-secret"


@dataclass
class S3Server:
    server: ThreadedMotoServer
    endpoint_url: str

    def client(self):
        """A boto3 client of our own, to look in the bucket behind the storage's back."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            # Fail fast: a stopped server must not make a test wait for retries.
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def keys(self, bucket: str = BUCKET) -> list[str]:
        """Every key in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str, bucket: str = BUCKET) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def head(self, key: str, bucket: str = BUCKET) -> dict:
        return self.client().head_object(Bucket=bucket, Key=key)

    def empty(self, bucket: str = BUCKET) -> None:
        client = self.client()
        for key in self.keys(bucket):
            client.delete_object(Bucket=bucket, Key=key)


def start() -> S3Server:
    """moto's server on 127.0.0.1 and a port the OS picks, with the session's bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(server=server, endpoint_url=f"http://{host}:{port}")
    s3.client().create_bucket(Bucket=BUCKET)
    return s3


def storage_settings(s3: S3Server) -> dict:
    """The settings config/settings.py makes from AWS_STORAGE_BUCKET_NAME and its friends,
    pointed at the test server. STORAGES comes last: changing it makes Django forget the
    storages it built, and the next use builds an S3Storage from the AWS_* set before it."""
    return {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_ACL": None,
        "AWS_QUERYSTRING_AUTH": True,
        "AWS_S3_FILE_OVERWRITE": False,
        "AWS_S3_SIGNATURE_VERSION": "s3v4",
        "AWS_S3_MAX_MEMORY_SIZE": 16 * 1024 * 1024,
        "STORAGES": {
            "default": {"BACKEND": "config.storage.S3Storage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    }


def fetch(url: str):
    """GET a URL as a browser would, outside Django (a presigned URL): (status, headers, body)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class ThumbnailRefusingS3Storage(S3Storage):
    """The test bucket refusing to store thumbnails (as a bucket policy would): for a
    failure halfway through processing, after the display copy was written."""

    def _get_write_parameters(self, name, content=None):
        if name.startswith("photos/thumb/"):
            raise ClientError(
                {
                    "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "PutObject",
            )
        return super()._get_write_parameters(name, content)
