"""An object store on any S3-compatible service (AWS S3, MinIO, Ceph RGW…), through the standard S3 API only.

Configured as ``s3://bucket/prefix``; the endpoint and credentials come from the usual AWS variables
(``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``…). Large objects are uploaded in parts; downloads can be handed to clients as presigned
URLs, so their bytes never pass through the hub.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from .. import errors
from .objects import READ_CHUNK, check_key

PART_SIZE = 64 * 1024 * 1024


class S3ObjectStore:
    """Objects as S3 objects under ``s3://bucket/prefix/<kind>/<name>``."""

    def __init__(self, url: str, *, client=None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise errors.BadRequest(f"Invalid object store URL {url!r}: expected s3://bucket[/prefix]")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
        )
        self.client = client or boto3.client("s3", endpoint_url=endpoint, config=config)
        self._transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
        self._check_bucket(url)

    def _check_bucket(self, url: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from .database import ConfigurationError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket"):
                raise ConfigurationError(f"the object store bucket {self.bucket!r} does not exist ({url})") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigurationError(
                    f"access to the object store bucket {self.bucket!r} was denied: check the AWS credentials"
                ) from None
            raise ConfigurationError(f"cannot use the object store {url}: {code or exc}") from None
        except BotoCoreError as exc:
            raise ConfigurationError(f"cannot reach the object store {url}: {exc}") from None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path) -> None:
        """Upload a local file (in parts when large) and remove it; a no-op when already stored."""
        if not self.exists(key):
            self.client.upload_file(str(source), self.bucket, self._key(key), Config=self._transfer)
        Path(source).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Upload ``data`` (a no-op when already stored)."""
        if not self.exists(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def size(self, key: str) -> int | None:
        """The object's size from a HEAD request, or None."""
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return self.size(key) is not None

    def iter_range(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start``..``stop`` with one ranged GET."""
        from botocore.exceptions import ClientError

        if stop is not None and stop <= start:
            return iter(())
        byte_range = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=byte_range)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise errors.NotFound(f"Object {key} not found") from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())
            raise
        return _close_after(body)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        """Bytes ``start``..``stop`` of the object."""
        return b"".join(self.iter_range(key, start, stop))

    def delete(self, key: str) -> None:
        """Delete the object (S3 does not mind when it is absent)."""
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url_for(self, key: str, *, expires_in: int, start: int | None = None, stop: int | None = None) -> str:
        """A presigned GET URL; with a range, the signature covers the exact ``Range`` header to send."""
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if start is not None:
            params["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def local_path(self, key: str) -> None:
        """Objects are remote."""
        return None


def _close_after(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
