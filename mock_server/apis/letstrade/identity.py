"""Let'sTrade users and bearer tokens (pure: no HTTP). Passwords are kept as salted hashes and
checked in constant time; tokens are looked up by their SHA-256."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from mock_server import secrets


@dataclass
class User:
    id: str
    email: str
    name: str
    surname: str
    password_salt: str
    password_hash: str
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"_id": self.id, "email": self.email, "name": self.name, "surname": self.surname}


def _hash(salt: str, password: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"), 1000).hex()


class Identity:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:letstrade-identity")
        self.users: dict[str, User] = {}
        self._by_email: dict[str, str] = {}
        self._tokens: dict[str, str] = {}  # sha256(token) -> user id
        self.client_id = self.new_object_id()  # the Let'sTrade client (merchant) this mock plays
        self.default_password = "Pw-" + secrets.token_urlsafe(self._rng, 12)
        self.default_user = self.add_user("pos.operator@example.com", self.default_password, "Pat", "Operator")
        self.default_token = self.issue_token(self.default_user)

    def new_object_id(self) -> str:
        """A 24-hex id, as Let'sTrade (MongoDB) ids look."""
        return secrets.token_hex(self._rng, 12)

    def add_user(self, email: str, password: str, name: str = "", surname: str = "") -> User:
        salt = secrets.token_hex(self._rng, 8)
        user = User(self.new_object_id(), email, name, surname, salt, _hash(salt, password))
        self.users[user.id] = user
        self._by_email[email.lower()] = user.id
        return user

    def register(
        self,
        email: str,
        password: str,
        name: str = "",
        surname: str = "",
        *,
        user_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> User:
        """Sign-up (letstrade-channels `POST /user/sign_up`): a new user, optionally with a given id
        (the id of the customer document the user claims). Raises ValueError, changing nothing, when
        the e-mail address or the id is already a user's. Its tokens work on both Let'sTrade APIs."""
        if self.find_by_email(email) is not None:
            raise ValueError(f"email {email} is already registered")
        if user_id is not None and user_id in self.users:
            raise ValueError(f"user {user_id} already exists")
        salt = secrets.token_hex(self._rng, 8)
        user_id = user_id or self.new_object_id()
        user = User(user_id, email, name, surname, salt, _hash(salt, password), dict(extra or {}))
        self.users[user.id] = user
        self._by_email[email.lower()] = user.id
        return user

    def find_by_email(self, email: str) -> User | None:
        user_id = self._by_email.get(email.lower())
        return self.users.get(user_id) if user_id else None

    def sign_in(self, email: str, password: str) -> str | None:
        """A new token, or None. The same work is done for unknown e-mails, so timing says nothing."""
        user = self.find_by_email(email)
        salt = user.password_salt if user else "0" * 16
        candidate = _hash(salt, password)
        if user is None or not secrets.same(candidate, user.password_hash):
            return None
        return self.issue_token(user)

    def issue_token(self, user: User) -> str:
        token = "lt_" + secrets.token_urlsafe(self._rng, 24)
        self._tokens[secrets.sha256_hex(token)] = user.id
        return token

    def user_for_token(self, token: str) -> User | None:
        user_id = self._tokens.get(secrets.sha256_hex(token))
        return self.users.get(user_id) if user_id else None
