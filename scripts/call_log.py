"""Who called what on the emulator: the AWS side of the IAM check (scripts/iam/check.mjs).

moto evaluates no IAM. So that each call the stack makes can be checked against the role its
function has on AWS, the emulator writes every signed request to the file SQS_PUSH_CALL_LOG
names, one JSON line each (appended; several emulators may share the file):

  {"key": "<access key id>", "service": "sqs", "action": "SendMessageBatch",
   "region": "us-east-1", "resources": ["arn:aws:sqs:us-east-1:123456789012:<queue>"],
   "tags": {"owner": "..."}, "tagged": true, "status": 200}

`resources` are the ARNs IAM authorizes the call on (`*` for actions without resource-level
permissions); `tags` are the tags of the one queue a call names (aws:ResourceTag/* for the
browser's role); `tagged` marks a CreateQueue that tags as it creates (IAM then also asks for
sqs:TagQueue). An identity pool is named in ARNs by its name (`identitypool/sqs_push_local`),
not its random id, so the packaged template's pool and every test emulator's pool compare.

Each AssumeRoleWithWebIdentity that hands out credentials adds the session they belong to:

  {"kind": "web-identity", "key": "<access key id>", "role": "<RoleArn>",
   "policy": "<the session policy>", "identity": "<Cognito identity id>"}

The local stack tells its functions apart by their access keys (crates/local/src/functions.rs)
and adds the Lambda invokes it runs in process itself.
"""

from __future__ import annotations

import io
import json
import os
import threading
from urllib.parse import parse_qs, urlsplit

ENV = "SQS_PUSH_CALL_LOG"

_lock = threading.Lock()
_fd: int | None = None


def _write(record: dict) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    with _lock:
        # One write() of one line on an O_APPEND file: lines of concurrent writers never mix.
        os.write(_fd, line)


def _signature(environ) -> tuple[str | None, str | None, str | None]:
    """(access key, region, service) from the SigV4 Authorization header; Nones when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    marker = "Credential="
    if marker not in auth:
        query = parse_qs(environ.get("QUERY_STRING") or "")
        scope = (query.get("X-Amz-Credential") or [""])[0]
    else:
        scope = auth.split(marker, 1)[1].split(",", 1)[0]
    parts = scope.split("/")
    if len(parts) < 5:
        return None, None, None
    return parts[0], parts[2], parts[3]


def _params(environ, body: bytes) -> tuple[str | None, dict]:
    """The operation name and its parameters, for the JSON and the query protocols."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    form.update(parse_qs(environ.get("QUERY_STRING") or ""))
    flat = {key: values[0] for key, values in form.items()}
    return flat.get("Action"), flat


def _default_account() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    return DEFAULT_ACCOUNT_ID


def _sqs(action: str, params: dict, region: str, record: dict) -> list[str]:
    account = _default_account()
    url = params.get("QueueUrl")
    if url:
        path = [p for p in urlsplit(url).path.split("/") if p]
        if len(path) >= 2:
            account, name = path[-2], path[-1]
        else:
            name = path[-1] if path else ""
        try:
            from moto.sqs.models import sqs_backends

            queue = sqs_backends[account][region].queues.get(name)
            if queue is not None:
                record["tags"] = dict(queue.tags or {})
        except Exception:  # noqa: BLE001 - tags are only context; the call is still recorded
            pass
    elif params.get("QueueName"):
        name = params["QueueName"]
        if action == "CreateQueue" and (params.get("tags") or params.get("Tag.1.Key")):
            record["tagged"] = True
    else:
        return ["*"]
    return [f"arn:aws:sqs:{region}:{account}:{name}"]


def _dynamodb(action: str, params: dict, region: str, record: dict) -> list[str]:
    account = _default_account()

    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if params.get("StreamArn"):
        return [params["StreamArn"]]
    if params.get("ShardIterator"):
        # moto's stream shard iterators are "<stream arn>|1|<id>"
        return [str(params["ShardIterator"]).split("|", 1)[0]]
    if params.get("TableName"):
        return [table(params["TableName"], params.get("IndexName"))]
    if isinstance(params.get("RequestItems"), dict):
        return [table(name) for name in params["RequestItems"]]
    if isinstance(params.get("TransactItems"), list):
        # IAM authorizes a transaction item by item, as its own operation (Put → PutItem, …):
        # "transact" lists each [operation, table ARN].
        items = []
        for item in params["TransactItems"]:
            for operation, body in item.items() if isinstance(item, dict) else []:
                if isinstance(body, dict) and body.get("TableName"):
                    items.append([operation, table(body["TableName"])])
        record["transact"] = items
        return sorted({arn for _, arn in items})
    return ["*"]


def _kinesis(params: dict, region: str) -> list[str]:
    if params.get("StreamARN"):
        return [params["StreamARN"]]
    name = params.get("StreamName")
    if not name and params.get("ShardIterator"):
        try:
            from moto.kinesis.utils import decompose_shard_iterator

            name = decompose_shard_iterator(params["ShardIterator"])[0]
        except Exception:  # noqa: BLE001 - an iterator moto did not issue
            name = None
    if not name:
        return ["*"]
    return [f"arn:aws:kinesis:{region}:{_default_account()}:stream/{name}"]


def _cognito(params: dict, region: str) -> list[str]:
    from moto.cognitoidentity.models import cognitoidentity_backends

    account = _default_account()
    backend = cognitoidentity_backends[account][region]

    def pool_arn(pool_id: str) -> str:
        pool = backend.identity_pools.get(pool_id)
        name = pool.identity_pool_name if pool is not None else f"unknown-pool-{pool_id}"
        return f"arn:aws:cognito-identity:{region}:{account}:identitypool/{name}"

    if params.get("IdentityPoolId"):
        return [pool_arn(params["IdentityPoolId"])]
    ids = params.get("IdentityIdsToDelete") or ([params["IdentityId"]] if params.get("IdentityId") else [])
    if not ids:
        return ["*"]
    pools = []
    for identity_id in ids:
        owner = next(
            (
                pool_id
                for pool_id, pool in list(backend.pools_identities.items())
                if any(i.get("IdentityId") == identity_id for i in pool.get("Identities", []))
            ),
            None,
        )
        if owner is None and len(backend.identity_pools) == 1:
            # deleted already (a repeated cleanup): the region's one pool is the one it was in
            owner = next(iter(backend.identity_pools))
        pools.append(pool_arn(owner) if owner else f"arn:aws:cognito-identity:{region}:{account}:identitypool/unknown")
    return sorted(set(pools))


def _resources(service: str, action: str, params: dict, region: str, record: dict) -> list[str]:
    if service == "sqs":
        return _sqs(action, params, region, record)
    if service == "dynamodb":
        return _dynamodb(action, params, region, record)
    if service == "kinesis":
        return _kinesis(params, region)
    if service == "cognito-identity":
        return _cognito(params, region)
    return ["*"]


def web_identity(key: str, role: str, policy: str | None, identity: str) -> None:
    """Called by the STS patch for each AssumeRoleWithWebIdentity that returned credentials."""
    if _fd is None:
        return
    _write({"kind": "web-identity", "key": key, "role": role, "policy": policy, "identity": identity})


def install() -> bool:
    """Start recording when SQS_PUSH_CALL_LOG is set; True if it is."""
    global _fd
    path = os.environ.get(ENV)
    if not path:
        return False
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original_call = DomainDispatcherApplication.__call__

    def recording_call(self, environ, start_response):
        key, region, service = _signature(environ)
        if key is None:
            return original_call(self, environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = b""
        if length > 0:
            # read once, handed on as read; a body without a length (chunked) is left alone
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        record = None
        try:
            action, params = _params(environ, body)
            if action:
                record = {"key": key, "service": service, "action": action, "region": region}
                # resources before the call: a DeleteQueue's tags are gone after it
                record["resources"] = _resources(service, action, params, region, record)
        except Exception as error:  # noqa: BLE001 - never fail the call for its record
            _write({"key": key, "service": service, "error": f"{type(error).__name__}: {error}"})
        status = []

        def recording_start_response(code, headers, *rest):
            status.append(int(str(code).split(" ", 1)[0]))
            return start_response(code, headers, *rest)

        answer = original_call(self, environ, recording_start_response)
        if record is not None:
            # the HTTP status: a browser's refused attempt is no grant it needs
            record["status"] = status[0] if status else None
            _write(record)
        return answer

    DomainDispatcherApplication.__call__ = recording_call
    return True

