"""The S3 storage (django-storages), failing as a local disk does.

The app's code treats storage as Django's API and its failures as OSError (a full or
read-only disk): an upload answers "storage unavailable", processing retries, a cleanup
logs. boto3 raises its own errors instead (ClientError for a refusal such as a missing
bucket or denied access, BotoCoreError for an unreachable endpoint), which no such
`except OSError` catches. Here they become OSError, the boto3 error chained as the cause:
a missing file is still FileNotFoundError, as django-storages already makes it.
"""

import contextlib

from botocore.exceptions import BotoCoreError, ClientError
from django.utils.deconstruct import deconstructible
from storages.backends import s3
from storages.utils import clean_name


@contextlib.contextmanager
def _as_oserror(action: str, name: str):
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise OSError(f"S3 {action} {name}: {error}") from error


class S3File(s3.S3File):
    """Reading downloads on first access and writing uploads on close: both can fail."""

    def __init__(self, name, mode, storage, buffer_size=None):
        # Opening for reading asks S3 for the object (HEAD): a store that refuses fails here.
        with _as_oserror("open", name):
            super().__init__(name, mode, storage, buffer_size)

    def _get_file(self):
        with _as_oserror("read", self.name):
            return super()._get_file()

    file = property(_get_file, s3.S3File._set_file)

    def _flush_write_buffer(self):
        with _as_oserror("write", self.name):
            super()._flush_write_buffer()

    def close(self):
        with _as_oserror("write", self.name):
            super().close()


@deconstructible
class S3Storage(s3.S3Storage):
    def _open(self, name, mode="rb"):
        name = self._normalize_name(clean_name(name))
        try:
            return S3File(name, mode, self)
        except OSError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and (
                cause.response["ResponseMetadata"]["HTTPStatusCode"] == 404
            ):
                raise FileNotFoundError(f"File does not exist: {name}") from cause
            raise

    def _save(self, name, content):
        with _as_oserror("write", name):
            return super()._save(name, content)

    def delete(self, name):
        with _as_oserror("delete", name):
            super().delete(name)

    def exists(self, name):
        with _as_oserror("look for", name):
            return super().exists(name)

    def listdir(self, name):
        with _as_oserror("list", name):
            return super().listdir(name)

    def size(self, name):
        with _as_oserror("size of", name):
            return super().size(name)

    def get_modified_time(self, name):
        with _as_oserror("time of", name):
            return super().get_modified_time(name)
