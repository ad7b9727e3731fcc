"""Ed25519 keys and signatures: what makes the audit manifest protect itself.

A hash in the manifest proves a file unchanged only as long as nobody rewrites the manifest
too. A signature by a private key that HR keeps, checked with the public key an auditor was
given when the key was made, closes that gap: an edited or re-hashed manifest no longer
verifies, and neither does one signed by any other key.

Signature files (`audit/manifest.sig`, `audit/run.sig`) hold the 64-byte Ed25519 signature of
the exact bytes of the file they sign, base64-encoded on one line, so they survive e-mail and
can be checked with OpenSSL alone (see README). Ed25519 signatures are deterministic: the same
manifest signed with the same key gives the same signature file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.findings import BilingualError

PRIVATE_KEY_NAME = "kpi.key"
PUBLIC_KEY_NAME = "kpi.pub"
SIGNATURE_BYTES = 64


class SigningError(BilingualError):
    """A key that cannot be made or used: told to the person, never a traceback (exit 2)."""


# ------------------------------------------------------------------------------ keys

def new_keys(folder: Path) -> tuple[Path, Path]:
    """Write a new key pair into `folder`: `kpi.key` (private, PEM PKCS8, unencrypted, mode
    0600) and `kpi.pub` (public, PEM). Existing keys are never overwritten: a lost private key
    can be replaced, a silently replaced one would orphan every signature made with it."""
    folder = Path(folder)
    private_path, public_path = folder / PRIVATE_KEY_NAME, folder / PUBLIC_KEY_NAME
    existing = [p for p in (private_path, public_path) if p.exists() or p.is_symlink()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise SigningError(f"密钥已存在,不会覆盖:{names}。如确需新密钥,请选另一个文件夹(旧签名仍需旧公钥校验)。",
                           f"Keys already exist and are never overwritten: {names}. For a new key pair choose "
                           f"another folder (earlier signatures still need the old public key).")
    if folder.exists() and not folder.is_dir():
        raise SigningError(f"{folder} 是文件,不是文件夹:请给出用于存放密钥的文件夹。",
                           f"{folder} is a file, not a folder: give the folder to keep the keys in.")
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    _create(private_path, private_pem, 0o600)
    try:
        _create(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _create(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start (never readable by others, not even for a
    moment), refusing an existing file; SigningError when another process made it first."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise SigningError(f"密钥已存在,不会覆盖:{path}", f"A key already exists and is never overwritten: {path}") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the umask may only have removed bits; say exactly what we mean
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _read_key_file(path: Path, what_zh: str, what_en: str, usual_name: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"找不到{what_zh}文件:{path}", f"No {what_en} file at {path}") from None
    except IsADirectoryError:
        raise SigningError(f"{path} 是文件夹:请给出其中的{what_zh}文件(如 {path / usual_name})。",
                           f"{path} is a folder: give the {what_en} file in it (e.g. {path / usual_name}).") from None
    except OSError as exc:
        raise SigningError(f"无法读取{what_zh}文件 {path}:{exc.strerror}",
                           f"Cannot read the {what_en} file {path}: {exc.strerror}") from None


def _not_pem(path: Path, what_zh: str, what_en: str, usual_name: str) -> SigningError:
    return SigningError(f"{path} 不是 PEM 格式的{what_zh}:请使用 kpi keys new 生成的 {usual_name}。",
                        f"{path} is not a PEM {what_en}: use the {usual_name} that `kpi keys new` writes.")


def _not_ed25519(path: Path, what_zh: str, what_en: str) -> SigningError:
    return SigningError(f"{path} 不是 Ed25519 {what_zh}:请使用 kpi keys new 生成的密钥。",
                        f"{path} is not an Ed25519 {what_en}: use a key made by `kpi keys new`.")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file at `path` (as `kpi keys new` writes it)."""
    data = _read_key_file(path, "私钥", "private key", PRIVATE_KEY_NAME)
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise SigningError(f"{path} 是公钥:签名需要私钥(kpi keys new 生成的 {PRIVATE_KEY_NAME})。",
                           f"{path} is a public key: signing needs the private key ({PRIVATE_KEY_NAME} from "
                           f"`kpi keys new`).")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted PEM
        raise SigningError(f"{path} 是加密的私钥:请使用 kpi keys new 生成的未加密私钥。",
                           f"{path} is a password-protected private key: use the unencrypted key "
                           f"`kpi keys new` writes.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _not_pem(path, "私钥", "private key", PRIVATE_KEY_NAME) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _not_ed25519(path, "私钥", "private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at `path` (`kpi.pub`)."""
    data = _read_key_file(path, "公钥", "public key", PUBLIC_KEY_NAME)
    if b"PRIVATE KEY" in data:
        raise SigningError(f"{path} 是私钥:校验只需要公钥({PUBLIC_KEY_NAME});私钥不应交给审计人员。",
                           f"{path} is a private key: verifying needs only the public key ({PUBLIC_KEY_NAME}); "
                           f"the private key should never leave HR.")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise _not_pem(path, "公钥", "public key", PUBLIC_KEY_NAME) from None
    if not isinstance(key, Ed25519PublicKey):
        raise _not_ed25519(path, "公钥", "public key")
    return key


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """`SHA256:<hex>` of the raw public key: short enough to read out over the phone."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


# ------------------------------------------------------------------------------ signatures

def signature_text(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The content of a `.sig` file for `data`: base64 of the signature, one line."""
    return base64.b64encode(key.sign(data)) + b"\n"


def signature_matches(key: Ed25519PublicKey, data: bytes, text: bytes) -> bool:
    """Whether `text` (a `.sig` file's content) is a signature of exactly `data` by `key`."""
    try:
        signature = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


__all__ = [
    "PRIVATE_KEY_NAME", "PUBLIC_KEY_NAME", "SigningError", "fingerprint", "load_private_key",
    "load_public_key", "new_keys", "signature_matches", "signature_text",
]
