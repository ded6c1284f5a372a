#!/usr/bin/env python3
"""Local AWS emulator for sqs-push: moto in server mode on 127.0.0.1.

Usage: emulator.py [--port N] [--verbose] [--lenient-identities]

Before the server starts, moto's cognito-identity service is given the two
calls the stack needs and moto 5.2.5 lacks:

  DeleteIdentities   {"IdentityIdsToDelete": [...]}  (1..60 ids)
                     -> {"UnprocessedIdentityIds": []}; unknown ids are ignored,
                        as real Cognito does.
  DescribeIdentity   {"IdentityId": id}
                     -> {"IdentityId", "Logins", "CreationDate", "LastModifiedDate"}
                        or HTTP 400 ResourceNotFoundException for an unknown id.

Developer-authenticated identities, as AWS has them (moto only echoes a random token):

  GetOpenIdTokenForDeveloperIdentity  {"IdentityPoolId", "IdentityId"?, "Logins": {provider: user}}
                     -> {"IdentityId", "Token"}. Signed callers only, and not with credentials
                        the emulator handed out itself (ASIA… STS keys or Cognito's fixed key):
                        AWS requires the developer's IAM permission. The provider must be the
                        pool's DeveloperProviderName. A known login returns its identity; a new
                        one makes an identity (no IdentityId) or is linked to IdentityId.
  LookupDeveloperIdentity  {"IdentityPoolId", "IdentityId"? | "DeveloperUserIdentifier"?}
                     -> {"IdentityId", "DeveloperUserIdentifierList"}; same callers only.
  GetId / GetOpenIdToken / GetCredentialsForIdentity check logins: a pool with
                        AllowUnauthenticatedIdentities false answers NotAuthorizedException to a
                        caller without logins; an identity with a developer login needs
                        Logins {"cognito-identity.amazonaws.com": <a token issued for it>}.
  STS AssumeRoleWithWebIdentity accepts only tokens this emulator issued (unexpired, identity
                        not deleted), and where the role's trust policy has a
                        cognito-identity.amazonaws.com:amr condition, only a token whose amr
                        (authenticated / unauthenticated) it names: InvalidIdentityToken and
                        AccessDenied otherwise.

SetIdentityPoolRoles / GetIdentityPoolRoles are added too (stored, not enforced: moto
evaluates no IAM), so the local bootstrap attaches the role as serverless.yml does.

Identities stay where moto keeps them (backend.pools_identities[pool]["Identities"],
filled by GetId), so ListIdentities reflects deletions. Closer to AWS than plain
moto, too: GetId stamps each identity with CreationDate/LastModifiedDate/Logins
(ListIdentities shows them) and answers 400, not 500, for an unknown pool;
DeleteIdentityPool drops the pool's identities; GetCredentialsForIdentity and
GetOpenIdToken answer ResourceNotFoundException for an identity that does not
exist (e.g. one that was deleted). --lenient-identities keeps moto's original
behaviour for those last two calls (any id accepted, no login check).

With SQS_PUSH_CALL_LOG=<file>, every signed call (who, action, resource ARNs) and every web
identity session is appended to <file> for the IAM check (scripts/call_log.py).

GET /_emulator/stats answers {"requests": N, "byTarget": {...}}, the number of requests served
so far, in all and by X-Amz-Target (benchmarks use it for the emulator's request rate and the
SQS requests per delivered message).

Prints "emulator listening on http://127.0.0.1:PORT" once the server answers
HTTP, then runs until SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import call_log

MAX_DELETE_IDENTITIES = 60
COGNITO_LOGIN = "cognito-identity.amazonaws.com"
DEFAULT_TOKEN_SECONDS = 900

_identity_lock = threading.RLock()

# Web identity tokens the emulator issued: token -> {"IdentityId", "aud", "amr", "exp"}.
_tokens: dict[str, dict] = {}
# Developer logins: (pool, identity) -> (provider, user) and (pool, provider, user) -> identity.
_developer_by_identity: dict[tuple[str, str], tuple[str, str]] = {}
_identity_by_developer: dict[tuple[str, str, str], str] = {}


def _now() -> float:
    return time.time()


def patch_cognito_identity(strict_identities: bool = True) -> None:
    """Add DeleteIdentities and DescribeIdentity to moto's cognito-identity."""
    from moto.cognitoidentity import models, responses
    from moto.cognitoidentity.exceptions import ResourceNotFoundError
    from moto.core.exceptions import JsonRESTError

    backend_cls = models.CognitoIdentityBackend
    response_cls = responses.CognitoIdentityResponse
    backends = models.cognitoidentity_backends

    if getattr(backend_cls, "_sqs_push_patched", False):
        return

    def not_found(identity_id: str) -> ResourceNotFoundError:
        return ResourceNotFoundError(f"Identity '{identity_id}' not found.")

    def loaded_backends(preferred_account: str, identity_id: str):
        """Region backends that exist already; the likeliest ones first."""
        accounts = [preferred_account] + [
            a for a in list(dict.keys(backends)) if a != preferred_account
        ]
        region = identity_id.split(":", 1)[0]
        for account in accounts:
            if account not in dict.keys(backends):
                continue
            per_region = dict.__getitem__(backends, account)
            regional = list(dict.items(per_region))
            regional.sort(key=lambda kv: kv[0] != region)
            for _, backend in regional:
                yield backend

    def find_identity(account_id: str, identity_id: str):
        """(pool record, identity dict) for identity_id, or None."""
        for backend in loaded_backends(account_id, identity_id):
            for pool in list(backend.pools_identities.values()):
                for ident in pool.get("Identities", []):
                    if ident.get("IdentityId") == identity_id:
                        return pool, ident
        return None

    def forget_identity(pool_id: str, identity_id: str) -> None:
        login = _developer_by_identity.pop((pool_id, identity_id), None)
        if login is not None:
            _identity_by_developer.pop((pool_id, *login), None)
        for token in [t for t, v in _tokens.items() if v["IdentityId"] == identity_id]:
            del _tokens[token]

    def find_pool(account_id: str, pool_id: str):
        """The pool model for pool_id, or None."""
        for backend in loaded_backends(account_id, str(pool_id or "")):
            pool = backend.identity_pools.get(pool_id)
            if pool is not None:
                return backend, pool
        return None

    def not_authorized(message: str) -> JsonRESTError:
        return JsonRESTError("NotAuthorizedException", message)

    def issue_token(identity_id: str, pool_id: str, amr: str, seconds: int) -> str:
        token = "emulator-token." + secrets.token_urlsafe(32)
        _tokens[token] = {
            "IdentityId": identity_id,
            "aud": pool_id,
            "amr": amr,
            "exp": _now() + seconds,
        }
        return token

    def valid_token(token, identity_id=None):
        entry = _tokens.get(token) if isinstance(token, str) else None
        if entry is None or entry["exp"] < _now():
            return None
        if identity_id is not None and entry["IdentityId"] != identity_id:
            return None
        return entry

    def authorize(account_id: str, identity_id: str, logins) -> str:
        """The amr of a caller naming identity_id with logins, or NotAuthorizedException."""
        if not strict_identities:
            return "unauthenticated"
        found = find_identity(account_id, identity_id)
        if found is None:
            raise not_found(identity_id)
        pool_id = found[0]["IdentityPoolId"]
        logins = logins if isinstance(logins, dict) else {}
        if logins:
            if set(logins) == {COGNITO_LOGIN} and valid_token(
                logins[COGNITO_LOGIN], identity_id
            ):
                return "authenticated"
            raise not_authorized(
                "Logins don't match. Please include at least one valid login for this "
                "identity or identity pool."
            )
        located = find_pool(account_id, pool_id)
        if located is None or not located[1].allow_unauthenticated_identities:
            raise not_authorized(
                "Unauthenticated access is not supported for this identity pool."
            )
        if (pool_id, identity_id) in _developer_by_identity:
            raise not_authorized(
                "Logins don't match. Please include at least one valid login for this "
                "identity or identity pool."
            )
        return "unauthenticated"

    def require_developer_caller(response) -> None:
        """AWS lets only IAM principals with the permission call the developer APIs: refuse
        unsigned calls and the credentials the emulator itself hands to browsers."""
        auth = response.headers.get("Authorization") or ""
        marker = "Credential="
        if "AWS4-HMAC-SHA256" not in auth or marker not in auth:
            raise JsonRESTError(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: this call must be signed",
            )
        access_key = auth.split(marker, 1)[1].split("/", 1)[0]
        if access_key.startswith("ASIA") or access_key == "TESTACCESSKEY12345":
            raise JsonRESTError(
                "AccessDeniedException",
                f"User with access key {access_key} is not authorized to perform "
                "cognito-identity:GetOpenIdTokenForDeveloperIdentity",
            )

    # --- backend methods -------------------------------------------------

    original_get_id = backend_cls.get_id

    def get_id(self, identity_pool_id: str) -> str:
        with _identity_lock:
            # moto answers 500 (KeyError) for an unknown pool; AWS says 400.
            region = str(identity_pool_id or "").split(":", 1)[0]
            try:
                pool_backend = backends[self.account_id][region]
                known = identity_pool_id in pool_backend.pools_identities
            except Exception:  # noqa: BLE001 - unknown region
                known = False
            if not known:
                raise ResourceNotFoundError(
                    f"IdentityPool '{identity_pool_id}' not found."
                )
            body = original_get_id(self, identity_pool_id)
            identity_id = json.loads(body)["IdentityId"]
            found = find_identity(self.account_id, identity_id)
            if found is not None:
                now = _now()
                ident = found[1]
                ident.setdefault("Logins", [])
                ident.setdefault("CreationDate", now)
                ident.setdefault("LastModifiedDate", now)
            return body

    def describe_identity(self, identity_id: str) -> str:
        with _identity_lock:
            found = find_identity(self.account_id, identity_id)
            if found is None:
                raise not_found(identity_id)
            ident = found[1]
            now = _now()
            return json.dumps(
                {
                    "IdentityId": identity_id,
                    "Logins": list(ident.get("Logins", [])),
                    "CreationDate": ident.get("CreationDate", now),
                    "LastModifiedDate": ident.get(
                        "LastModifiedDate", ident.get("CreationDate", now)
                    ),
                }
            )

    def delete_identities(self, identity_ids: list[str]) -> str:
        with _identity_lock:
            for identity_id in identity_ids:
                found = find_identity(self.account_id, identity_id)
                if found is None:
                    continue  # AWS does not report unknown ids either
                pool, ident = found
                pool["Identities"] = [
                    i for i in pool["Identities"] if i is not ident
                ]
                forget_identity(pool["IdentityPoolId"], identity_id)
            return json.dumps({"UnprocessedIdentityIds": []})

    def require_identity(self, identity_id: str) -> None:
        if strict_identities:
            with _identity_lock:
                if find_identity(self.account_id, identity_id) is None:
                    raise not_found(identity_id)

    original_get_credentials = backend_cls.get_credentials_for_identity
    original_get_open_id_token = backend_cls.get_open_id_token

    def get_credentials_for_identity(self, identity_id: str) -> str:
        require_identity(self, identity_id)
        return original_get_credentials(self, identity_id)

    def get_open_id_token(self, identity_id: str) -> str:
        require_identity(self, identity_id)
        return original_get_open_id_token(self, identity_id)

    original_delete_pool = backend_cls.delete_identity_pool

    def delete_identity_pool(self, identity_pool_id: str) -> None:
        # moto keeps the pool's identities around; AWS deletes them with it.
        with _identity_lock:
            original_delete_pool(self, identity_pool_id)
            gone = self.pools_identities.pop(identity_pool_id, None) or {}
            for ident in gone.get("Identities", []):
                forget_identity(identity_pool_id, ident.get("IdentityId"))

    backend_cls.delete_identity_pool = delete_identity_pool
    backend_cls.get_id = get_id
    backend_cls.describe_identity = describe_identity
    backend_cls.delete_identities = delete_identities
    backend_cls.get_credentials_for_identity = get_credentials_for_identity
    backend_cls.get_open_id_token = get_open_id_token

    # --- response methods (dispatched by X-Amz-Target action name) -------

    json_headers = {"Content-Type": "application/x-amz-json-1.1"}

    def validation_error(message: str) -> JsonRESTError:
        return JsonRESTError("ValidationException", message)

    def r_delete_identities(self) -> str:
        ids = self._get_param("IdentityIdsToDelete")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise validation_error(
                "1 validation error detected: Value at 'identityIdsToDelete' "
                "failed to satisfy constraint: Member must not be null"
            )
        if not 1 <= len(ids) <= MAX_DELETE_IDENTITIES:
            raise validation_error(
                f"1 validation error detected: Value '{ids}' at 'identityIdsToDelete' "
                "failed to satisfy constraint: Member must have length "
                f"{'greater than or equal to 1' if not ids else 'less than or equal to 60'}"
            )
        return self.backend.delete_identities(ids), dict(json_headers)

    def r_describe_identity(self) -> str:
        identity_id = self._get_param("IdentityId")
        if not isinstance(identity_id, str) or not identity_id:
            raise validation_error(
                "1 validation error detected: Value at 'identityId' failed to "
                "satisfy constraint: Member must not be null"
            )
        return self.backend.describe_identity(identity_id), dict(json_headers)

    # SetIdentityPoolRoles / GetIdentityPoolRoles: moto lacks both (a 500). The local bootstrap
    # attaches the unauthenticated role the same way serverless.yml does on AWS.
    pool_roles: dict[tuple[str, str], dict] = {}

    def r_set_identity_pool_roles(self) -> str:
        pool_id = self._get_param("IdentityPoolId")
        roles = self._get_param("Roles")
        if not isinstance(pool_id, str) or not isinstance(roles, dict):
            raise validation_error("IdentityPoolId and Roles are required")
        if pool_id not in self.backend.identity_pools:
            raise ResourceNotFoundError(f"IdentityPool '{pool_id}' not found.")
        pool_roles[(self.current_account, pool_id)] = {
            "Roles": roles,
            "RoleMappings": self._get_param("RoleMappings") or {},
        }
        return "", dict(json_headers)

    def r_get_identity_pool_roles(self) -> str:
        pool_id = self._get_param("IdentityPoolId")
        if pool_id not in self.backend.identity_pools:
            raise ResourceNotFoundError(f"IdentityPool '{pool_id}' not found.")
        stored = pool_roles.get((self.current_account, pool_id), {"Roles": {}, "RoleMappings": {}})
        return json.dumps({"IdentityPoolId": pool_id, **stored}), dict(json_headers)

    original_r_get_id = response_cls.get_id

    def r_get_id(self) -> str:
        pool_id = self._get_param("IdentityPoolId")
        logins = self._get_param("Logins") or {}
        located = find_pool(self.current_account, pool_id)
        if strict_identities and located is not None:
            if logins:
                token = logins.get(COGNITO_LOGIN) if len(logins) == 1 else None
                entry = valid_token(token)
                if entry is None or entry["aud"] != pool_id:
                    raise not_authorized("Invalid login token.")
                return json.dumps({"IdentityId": entry["IdentityId"]}), dict(json_headers)
            if not located[1].allow_unauthenticated_identities:
                raise not_authorized(
                    "Unauthenticated access is not supported for this identity pool."
                )
        return original_r_get_id(self)

    def r_get_open_id_token(self) -> str:
        identity_id = self._get_param("IdentityId")
        with _identity_lock:
            amr = authorize(self.current_account, identity_id, self._get_param("Logins"))
            body = self.backend.get_open_id_token(identity_id)
            if strict_identities:
                pool_id = find_identity(self.current_account, identity_id)[0]["IdentityPoolId"]
                token = issue_token(identity_id, pool_id, amr, DEFAULT_TOKEN_SECONDS)
                body = json.dumps({"IdentityId": identity_id, "Token": token})
        return body, dict(json_headers)

    def r_get_credentials_for_identity(self) -> str:
        identity_id = self._get_param("IdentityId")
        with _identity_lock:
            authorize(self.current_account, identity_id, self._get_param("Logins"))
        return self.backend.get_credentials_for_identity(identity_id), dict(json_headers)

    def r_get_open_id_token_for_developer_identity(self) -> str:
        require_developer_caller(self)
        pool_id = self._get_param("IdentityPoolId")
        identity_id = self._get_param("IdentityId")
        logins = self._get_param("Logins")
        seconds = self._get_param("TokenDuration") or DEFAULT_TOKEN_SECONDS
        with _identity_lock:
            located = find_pool(self.current_account, pool_id)
            if located is None:
                raise ResourceNotFoundError(f"IdentityPool '{pool_id}' not found.")
            backend, pool = located
            provider = pool.developer_provider_name
            if not isinstance(logins, dict) or len(logins) != 1:
                raise validation_error("Logins must name exactly one developer provider")
            if not provider or provider not in logins:
                raise not_authorized(
                    f"Logins don't match the pool's developer provider {provider!r}"
                )
            user = logins[provider]
            if not isinstance(user, str) or not 1 <= len(user) <= 1024:
                raise validation_error("the developer user identifier must be 1-1024 characters")
            linked = _identity_by_developer.get((pool_id, provider, user))
            if identity_id:
                found = find_identity(self.current_account, identity_id)
                if found is None or found[0]["IdentityPoolId"] != pool_id:
                    raise not_found(identity_id)
                if linked is not None and linked != identity_id:
                    raise JsonRESTError(
                        "ResourceConflictException",
                        "The developer user identifier is linked to another identity.",
                    )
                current = _developer_by_identity.get((pool_id, identity_id))
                if current is not None and current != (provider, user):
                    raise JsonRESTError(
                        "ResourceConflictException",
                        "The identity is linked to another developer user identifier.",
                    )
            elif linked is not None:
                identity_id = linked
            else:
                identity_id = json.loads(backend.get_id(pool_id))["IdentityId"]
            found = find_identity(self.current_account, identity_id)
            ident = found[1]
            if provider not in ident.setdefault("Logins", []):
                ident["Logins"].append(provider)
            ident["LastModifiedDate"] = _now()
            _developer_by_identity[(pool_id, identity_id)] = (provider, user)
            _identity_by_developer[(pool_id, provider, user)] = identity_id
            token = issue_token(identity_id, pool_id, "authenticated", int(seconds))
        return json.dumps({"IdentityId": identity_id, "Token": token}), dict(json_headers)

    def r_lookup_developer_identity(self) -> str:
        require_developer_caller(self)
        pool_id = self._get_param("IdentityPoolId")
        identity_id = self._get_param("IdentityId")
        user = self._get_param("DeveloperUserIdentifier")
        with _identity_lock:
            located = find_pool(self.current_account, pool_id)
            if located is None:
                raise ResourceNotFoundError(f"IdentityPool '{pool_id}' not found.")
            provider = located[1].developer_provider_name
            if not identity_id and user:
                identity_id = _identity_by_developer.get((pool_id, provider, user))
            login = _developer_by_identity.get((pool_id, identity_id or ""))
            if not identity_id or login is None:
                raise ResourceNotFoundError("No identity is linked to that developer user.")
        return (
            json.dumps({"IdentityId": identity_id, "DeveloperUserIdentifierList": [login[1]]}),
            dict(json_headers),
        )

    response_cls.get_id = r_get_id
    response_cls.get_open_id_token = r_get_open_id_token
    response_cls.get_credentials_for_identity = r_get_credentials_for_identity
    response_cls.get_open_id_token_for_developer_identity = (
        r_get_open_id_token_for_developer_identity
    )
    response_cls.lookup_developer_identity = r_lookup_developer_identity
    if strict_identities:
        patch_sts_web_identity(valid_token)
    response_cls.delete_identities = r_delete_identities
    response_cls.describe_identity = r_describe_identity
    response_cls.set_identity_pool_roles = r_set_identity_pool_roles
    response_cls.get_identity_pool_roles = r_get_identity_pool_roles
    backend_cls._sqs_push_patched = True


def patch_sts_web_identity(valid_token) -> None:
    """AssumeRoleWithWebIdentity: only tokens the emulator issued, and only the amr the role's
    trust policy admits (the one condition key sqs-push's roles use)."""
    from moto.iam.models import iam_backends
    from moto.sts import responses as sts_responses
    from moto.sts.exceptions import STSClientError

    response_cls = sts_responses.TokenResponse
    original = response_cls.assume_role_with_web_identity

    def trusted_amrs(policy_document) -> list[str]:
        try:
            document = json.loads(policy_document) if isinstance(policy_document, str) else policy_document
        except ValueError:
            return []
        statements = document.get("Statement", []) if isinstance(document, dict) else []
        if isinstance(statements, dict):
            statements = [statements]
        amrs: list[str] = []
        for statement in statements:
            for condition in (statement.get("Condition") or {}).values():
                value = condition.get("cognito-identity.amazonaws.com:amr")
                if value is not None:
                    amrs.extend(value if isinstance(value, list) else [value])
        return amrs

    def assume_role_with_web_identity(self):
        token = self._get_param("WebIdentityToken")
        with _identity_lock:
            entry = valid_token(token)
        if entry is None:
            raise STSClientError(
                "InvalidIdentityToken", "The web identity token was not issued by Cognito or has expired"
            )
        role_arn = self._get_param("RoleArn") or ""
        try:
            role = iam_backends[self.current_account]["global"].get_role_by_arn(role_arn)
        except Exception:  # noqa: BLE001 - moto's own answer for an unknown role
            role = None
        if role is not None:
            amrs = trusted_amrs(role.assume_role_policy_document)
            if amrs and entry["amr"] not in amrs:
                raise STSClientError(
                    "AccessDenied",
                    f"Not authorized to perform sts:AssumeRoleWithWebIdentity "
                    f"(token amr {entry['amr']!r}, role trusts {amrs})",
                )
        result = original(self)
        try:
            credentials = result.result["Credentials"]
            call_log.web_identity(
                credentials.access_key_id, role_arn, self._get_param("Policy"), entry["IdentityId"]
            )
        except (AttributeError, KeyError, TypeError):
            pass  # a moto without ActionResult: the session is then not checked
        return result

    response_cls.assume_role_with_web_identity = assume_role_with_web_identity


def port_is_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True  # any HTTP status is an answer
        except Exception:
            time.sleep(0.05)
    return False


def patch_dynamodb_transactions() -> None:
    """Make moto's DynamoDB transactions safe under concurrency, and cheap.

    moto's TransactWriteItems deep-copies every table it touches (to roll back) while other
    request threads go on writing to them: under concurrent subscribes the copy failed with
    "dictionary changed size during iteration" and the call answered a 500 DynamoDB never gives.
    One lock over the writes makes a transaction see the table still, as DynamoDB's isolation
    does. And the copy took every item and every stream record of the table, so a subscribe cost
    more the longer the stack ran; the copy here takes the table's structure by reference and
    deep-copies only the items the transaction names (the only ones it can change) and the list
    of stream records (not the records), so rolling back still restores exactly what was there."""
    import copy
    from collections import defaultdict

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_sqs_push_serialized", False):
        return
    lock = threading.RLock()
    # Table name -> the (hash, range) keys the running transaction names; set under `lock`.
    touched: dict[str, set] = {}

    def serialized(method):
        def call(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)

        return call

    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is not None:
            setattr(DynamoDBBackend, name, serialized(original))

    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        with lock:
            touched.clear()
            for entry in transact_items:
                _, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName"))
                key = op.get("Key") or op.get("Item") or {}
                if table is None or table.hash_key_attr not in key:
                    continue
                range_attr = table.range_key_attr
                range_value = DynamoType(key[range_attr]) if range_attr in key else None
                touched.setdefault(table.name, set()).add(
                    (DynamoType(key[table.hash_key_attr]), range_value)
                )
            try:
                return original_transact(self, transact_items)
            finally:
                touched.clear()

    DynamoDBBackend.transact_write_items = transact_write_items

    def table_deepcopy(self, memo):
        new = Table.__new__(Table)
        memo[id(self)] = new
        keys = touched.get(self.name)
        for attribute, value in self.__dict__.items():
            if attribute == "items" and keys is not None:
                items = defaultdict(dict)
                for hash_value, stored in value.items():
                    items[hash_value] = dict(stored) if isinstance(stored, dict) else stored
                for hash_value, range_value in keys:
                    stored = items.get(hash_value)
                    if isinstance(stored, dict) and range_value in stored:
                        stored[range_value] = copy.deepcopy(stored[range_value], memo)
                    elif stored is not None and not isinstance(stored, dict):
                        items[hash_value] = copy.deepcopy(stored, memo)
                value = items
            elif attribute == "stream_shard" and value is not None:
                shard = copy.copy(value)
                shard.table = new
                shard.items = list(value.items)
                value = shard
            elif attribute not in ("lambda_event_source_mappings",):
                value = copy.deepcopy(value, memo)
            setattr(new, attribute, value)
        return new

    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend._sqs_push_serialized = True


STATS_PATH = "/_emulator/stats"



def patch_sqs_sender_id() -> None:
    """SendMessage and SendMessageBatch stamp SenderId as SQS does: `<RoleId>:<RoleSessionName>`
    for assumed-role credentials (moto's STS keeps exactly that as the assumed role's user_id),
    the IAM user's id for a user's access key. moto itself stamps one constant on every message,
    which would let the upstream consumer's SenderId check pass or fail for the wrong reason.
    Keys moto knows nothing of (the emulator's admin `test` key) keep moto's constant: on AWS
    they would be some other principal of the account, never a browser session."""
    from moto.iam.models import iam_backends
    from moto.sqs import models as sqs_models
    from moto.sqs import responses as sqs_responses
    from moto.sts.models import sts_backends

    if getattr(sqs_models.Message, "_sqs_push_sender", False):
        return
    stamping = threading.local()

    def sender_of(access_key: str) -> str | None:
        for per_account in list(sts_backends.values()):
            for backend in list(per_account.values()):
                role = backend.get_assumed_role_from_access_key(access_key)
                if role is not None:
                    return role.user_id
        for per_account in list(iam_backends.values()):
            for backend in list(per_account.values()):
                user = backend.get_user_from_access_key_id(access_key)
                if user is not None:
                    return user.id
        return None

    original_init = sqs_models.Message.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        sender = getattr(stamping, "sender", None)
        if sender:
            self.sender_id = sender

    def stamped(method):
        def call(self, *args, **kwargs):
            stamping.sender = sender_of(self.get_access_key())
            try:
                return method(self, *args, **kwargs)
            finally:
                stamping.sender = None

        return call

    sqs_models.Message.__init__ = init
    for name in ("send_message", "send_message_batch"):
        setattr(sqs_responses.SQSResponse, name, stamped(getattr(sqs_responses.SQSResponse, name)))
    sqs_models.Message._sqs_push_sender = True


def install_request_counter() -> None:
    """Count every request the emulator serves; GET /_emulator/stats answers
    {"requests": N, "byTarget": {"AmazonSQS.SendMessageBatch": n, ...}} (requests of the JSON
    protocols by their X-Amz-Target; others under their service's path, e.g. "query /").

    Benchmarks read it before and after a run to report the emulator's request rate and the
    requests of each kind."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    counted = {"requests": 0, "byTarget": {}}
    original_call = DomainDispatcherApplication.__call__

    def counting_call(self, environ, start_response):
        if environ.get("PATH_INFO") == STATS_PATH:
            with lock:
                body = json.dumps(counted).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET") or f"query {environ.get('PATH_INFO', '')}"
        with lock:
            counted["requests"] += 1
            by_target = counted["byTarget"]
            by_target[target] = by_target.get(target, 0) + 1
        return original_call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = counting_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566, help="TCP port (default 4566)")
    parser.add_argument(
        "--verbose", action="store_true", help="log every request to stderr"
    )
    parser.add_argument(
        "--lenient-identities",
        action="store_true",
        help="GetCredentialsForIdentity/GetOpenIdToken accept unknown identity ids",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1..65535, got {args.port}")

    # Request lines only with --verbose; warnings and errors always.
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(
        logging.INFO if args.verbose else logging.WARNING
    )

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if not port_is_free(args.port):
        print(
            f"emulator: error: 127.0.0.1:{args.port} is already in use "
            "(another emulator running? pass --port N)",
            file=sys.stderr,
        )
        return 1

    patch_cognito_identity(strict_identities=not args.lenient_identities)
    patch_dynamodb_transactions()
    patch_sqs_sender_id()
    install_request_counter()
    # SQS_PUSH_CALL_LOG: every signed call, for the IAM check (scripts/call_log.py).
    call_log.install()

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)

    # ThreadedMotoServer.start() waits forever if the server thread fails to
    # bind (e.g. the port was taken since the check above): report instead.
    startup_error: list[BaseException] = []
    original_entry = server._server_entry

    def entry() -> None:
        try:
            original_entry()
        except BaseException as exc:  # noqa: BLE001 - reported below
            startup_error.append(exc)
            server._server_ready_event.set()

    server._server_entry = entry  # type: ignore[method-assign]
    server.start()
    if startup_error:
        print(
            f"emulator: error: could not start on 127.0.0.1:{args.port}: {startup_error[0]}",
            file=sys.stderr,
        )
        return 1

    url = f"http://127.0.0.1:{args.port}"
    if not wait_http(url + "/moto-api/", 30):
        print(f"emulator: error: no HTTP answer from {url} after 30s", file=sys.stderr)
        server.stop()
        return 1
    if stop.is_set():
        server.stop()
        return 0

    print(f"emulator listening on {url}", flush=True)

    while not stop.wait(3600):
        pass

    server.stop()
    print("emulator stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
