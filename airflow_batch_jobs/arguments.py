"""What every sensor and operator of this provider shares: the query arguments, the connection and its hook, the
XCom options and, for the tasks that judge jobs, the policy and the step from a verdict to the task's outcome.

Plain values are checked when the DAG is parsed; templated ones (Jinja strings, XComArgs) after rendering, before
any AWS call. Either way the error names the argument and what to change.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import InvalidPolicyError
from airflow_batch_jobs.query import ALL_STATUSES, SELECTOR_ARGUMENTS, InvalidQueryError, JobQuery
from airflow_batch_jobs.watch import XCOM_DETAILS

if TYPE_CHECKING:
    from airflow_batch_jobs.policy import Policy

# The templated fields of every task that takes a query.
QUERY_FIELDS = (
    "job_queue",
    "array_job_id",
    "multi_node_job_id",
    "job_ids",
    "job_name",
    "job_definition",
    "created_after",
    "created_before",
    "share_identifier",
)

# The connection arguments, templated as the amazon provider's operators template theirs (its aws_template_fields,
# botocore_config included): rendered before the hook is made, on first use.
CONNECTION_FIELDS = ("aws_conn_id", "region_name", "verify", "botocore_config")

# The longest pause between two attempts to read back the jobs a trigger's verdict names (BatchJobsVerdictMixin).
READ_BACK_PAUSE_MAX_S = 30.0

# arn:<partition>:batch:<region>:<account>:job/<id> (an array child's id ends in ':<index>', a node's in '#<node>')
_JOB_ARN_RE = re.compile(r"^arn:[a-z0-9-]+:batch:[a-z0-9-]*:\d*:job/(?P<id>[^/\s]+)\Z")


def is_templated(value: Any) -> bool:
    """A value Airflow will still render: a Jinja string, an XComArg, or a list holding one."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(is_templated(v) for v in value)
    return hasattr(value, "resolve")  # XComArg / PlainXComArg


def check_xcom_arguments(xcom_detail: str, xcom_max_jobs: int) -> None:
    if xcom_detail not in XCOM_DETAILS:
        raise InvalidPolicyError(f"xcom_detail={xcom_detail!r}: use one of {', '.join(XCOM_DETAILS)}.")
    if isinstance(xcom_max_jobs, bool) or not isinstance(xcom_max_jobs, int) or xcom_max_jobs < 1:
        raise InvalidPolicyError(f"xcom_max_jobs={xcom_max_jobs!r}: use a whole number >= 1.")


def job_id_from(item: Any) -> str:
    """The job id of one ``job_ids`` item: an id, a job ARN (``arn:<partition>:batch:<region>:<account>:job/<id>``)
    or a record with ``job_id`` / ``jobId``."""
    value = item.get("job_id") or item.get("jobId") if isinstance(item, dict) else item
    if not isinstance(value, str) or not value.strip():
        raise InvalidQueryError(f"job_ids contains {item!r}: give job ids, job ARNs or records with a 'job_id'.")
    text = value.strip()
    if not text.startswith("arn:"):
        return text
    found = _JOB_ARN_RE.match(text)
    if found is None:
        raise InvalidQueryError(
            f"job_ids contains {text!r}: not a job ARN; give job ids or job ARNs "
            "('arn:<partition>:batch:<region>:<account>:job/<id>')."
        )
    return found["id"]


def list_from(value: Any, argument: str, what: str, example: str) -> list[Any]:
    """The items of a list argument as given, or as a template rendered it into a string field (a list param renders
    to ``"['a', 'b']"``, JSON or Python); a single item is a list of one, None or ``""`` an empty list."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [text]
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as err:
                raise InvalidQueryError(
                    f"{argument}={text!r} is not a list of {what}; render it to a list, e.g. {example}."
                ) from err
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list | tuple):
        raise InvalidQueryError(f"{argument}={value!r}: give a list of {what}, e.g. {example}.")
    return list(value)


def ids_from(value: Any) -> list[str]:
    """Job ids, each once, from ids or job ARNs, records (``job_id`` / ``jobId``), or a list's rendered string form
    (a templated ``job_ids`` renders a list to ``"['a', 'b']"``)."""
    items = list_from(value, "job_ids", "job ids, job ARNs or records with a 'job_id'", "['id-1', 'id-2']")
    return list(dict.fromkeys(job_id_from(item) for item in items))


def statuses_from(value: Any) -> list[str]:
    """``job_status``: statuses, one status, or a list's rendered string form, as ``job_ids`` is read."""
    statuses = list_from(value, "job_status", "statuses", "['SUCCEEDED', 'FAILED']")
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if unknown:
        raise InvalidQueryError(f"job_status contains {unknown}: use any of {', '.join(ALL_STATUSES)}.")
    return statuses


def query_from(arguments: dict[str, Any]) -> JobQuery:
    """The query from the (rendered) query arguments, each checked (raises InvalidQueryError naming the argument)."""
    check_not_yyyymmdd(arguments["created_after"], "created_after")
    check_not_yyyymmdd(arguments["created_before"], "created_before")
    return JobQuery.build(**{**arguments, "job_ids": ids_from(arguments["job_ids"])})


def check_plain_query_arguments(arguments: dict[str, Any]) -> None:
    """At DAG parse time, every plain query argument, by the rules its rendered value meets later. A templated value
    stands aside: a selector still counts as given (two selectors are two, whatever they render to), a filter is
    left out, and a ``job_ids`` list keeps its plain items."""
    stand_ins: dict[str, Any] = {}
    for name, value in arguments.items():
        if not is_templated(value):
            stand_ins[name] = value
        elif name == "job_ids":
            plain = [item for item in value if not is_templated(item)] if isinstance(value, list | tuple) else []
            stand_ins[name] = plain or ["rendered-later"]
        else:
            stand_ins[name] = "rendered-later" if name in SELECTOR_ARGUMENTS else None
    query_from(stand_ins)


def connection_arguments(
    aws_conn_id: Any, region_name: Any, verify: Any, botocore_config: Any
) -> tuple[str | None, str | None, bool | str | None, dict[str, Any] | None]:
    """The connection arguments as the hook takes them; raises InvalidQueryError naming the one that cannot work.

    A template renders to a string: ``verify`` "true" / "false" (any case) is the boolean, any other string a CA
    bundle path; ``botocore_config`` may be a dict's JSON or Python text (what ``{{ var.value.cfg }}`` renders to)."""
    for name, value in (("aws_conn_id", aws_conn_id), ("region_name", region_name)):
        if value is not None and not isinstance(value, str):
            raise InvalidQueryError(f"{name}={value!r}: give a string (or None).")
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
        verify = verify.strip().lower() == "true"
    elif verify is not None and not isinstance(verify, bool | str):
        raise InvalidQueryError(f"verify={verify!r}: give True, False, None or the path of a CA bundle.")
    config = botocore_config
    if isinstance(config, str):
        text = config.strip()
        try:
            config = json.loads(text) if text else None
        except ValueError:
            try:
                config = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                config = botocore_config
    if config is not None and not isinstance(config, dict):
        raise InvalidQueryError(
            f"botocore_config={botocore_config!r}: give a dict of botocore Config options (e.g. "
            "{'retries': {'mode': 'standard', 'max_attempts': 5}}), or a template rendering to one."
        )
    return aws_conn_id, region_name, verify, config


def check_not_yyyymmdd(value: Any, argument: str) -> None:
    """``{{ ds_nodash }}`` renders to ``20261121``: all digits, so it would read as (far too small) epoch ms."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if len(text) != 8 or not text.isdigit():
        return
    try:
        day = dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return
    raise InvalidQueryError(
        f"{argument}={value!r} looks like a date (YYYYMMDD); pass '{{{{ ds }}}}' or '{{{{ data_interval_start }}}}' "
        f"instead of '{{{{ ds_nodash }}}}', an ISO-8601 date or time (e.g. '{day:%Y-%m-%d}' or "
        f"'{day:%Y-%m-%dT%H:%M:%SZ}'), a datetime, or epoch milliseconds."
    )


class BatchJobsTaskMixin:
    """The part every task of this provider shares: the query arguments, held verbatim (they are template fields)
    and turned into a :class:`JobQuery` after rendering; the connection arguments (template fields too, checked when
    given and again once rendered) and the hook built from them on first use, after rendering; ``xcom_detail``.
    Mixed into a ``BaseOperator``, which provides ``log``, ``do_xcom_push`` and ``render_template_fields``."""

    job_queue: str | None
    array_job_id: str | None
    multi_node_job_id: str | None
    job_ids: Any
    job_name: str | None
    job_definition: str | None
    created_after: Any
    created_before: Any
    share_identifier: str | None
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None
    xcom_detail: str
    xcom_max_jobs: int
    # the keys of the console links this task persisted (airflow_batch_jobs.links.PERSISTED_LINKS): none until its
    # verdict, so its links do not read XCom that is not there yet
    _persisted_links: frozenset[str] = frozenset()
    if TYPE_CHECKING:  # from BaseOperator

        @property
        def log(self) -> Any: ...  # Airflow's own Logger protocol; a logging.Logger on Airflow 2

        do_xcom_push: bool

    def _init_query(
        self,
        *,
        job_queue: str | None,
        array_job_id: str | None,
        multi_node_job_id: str | None,
        job_ids: Any,
        job_name: str | None,
        job_definition: str | None,
        created_after: Any,
        created_before: Any,
        share_identifier: str | None,
    ) -> None:
        """Keep the query arguments verbatim; plain values are checked now (DAG parse time)."""
        self.job_queue = job_queue
        self.array_job_id = array_job_id
        self.multi_node_job_id = multi_node_job_id
        self.job_ids = job_ids
        self.job_name = job_name
        self.job_definition = job_definition
        self.created_after = created_after
        self.created_before = created_before
        self.share_identifier = share_identifier
        check_plain_query_arguments(self._query_arguments())

    def _init_xcom(self, xcom_detail: str, xcom_max_jobs: int) -> None:
        """What the task hands to XCom: ``xcom_detail`` per job, at most ``xcom_max_jobs`` records (every class takes
        the same bound, default 1000, and logs the cut)."""
        check_xcom_arguments(xcom_detail, xcom_max_jobs)
        self.xcom_detail = xcom_detail
        self.xcom_max_jobs = xcom_max_jobs

    def log_cut(self, kept: int, cut: int) -> None:
        if cut:
            self.log.warning("XCom holds %d job records; %d more were left out (xcom_max_jobs).", kept, cut)

    def _init_connection(
        self, aws_conn_id: str | None, region_name: str | None, verify: bool | str | None, botocore_config: Any
    ) -> None:
        """Keep the connection arguments verbatim (template fields); plain values are checked now (DAG parse time)."""
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self._check_connection(rendered=False)

    def _check_connection(self, *, rendered: bool) -> None:
        """Check the connection arguments (a template still to render stands aside); once rendered, keep them as the
        hook takes them (``verify`` and ``botocore_config`` from a template's text)."""
        values = [getattr(self, name) for name in CONNECTION_FIELDS]
        if not rendered:
            values = [None if is_templated(value) else value for value in values]
        checked = connection_arguments(*values)
        if rendered:
            self.aws_conn_id, self.region_name, self.verify, self.botocore_config = checked

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        self._check_connection(rendered=True)

    def _query_arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in QUERY_FIELDS}

    def build_query(self) -> JobQuery:
        """The query from the rendered arguments (raises InvalidQueryError naming the argument)."""
        return query_from(self._query_arguments())

    @cached_property
    def hook(self) -> BatchJobsHook:
        """Made on first use, which comes after rendering: the rendered connection arguments are the ones used."""
        return BatchJobsHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        )


class BatchJobsVerdictMixin(BatchJobsTaskMixin):
    """A task that judges jobs (the sensor, the check operator, the describe operator with ``check=True``): its
    policy, its XCom options, and :meth:`finish`, which turns a verdict event into the task's outcome."""

    policy: Policy
    # the failed jobs' last log lines in the task log (airflow_batch_jobs.log_tail): the sensor and the check operator
    # take log_lines / log_jobs; off elsewhere
    log_lines: int = 0
    log_jobs: int = 0

    def _init_verdict(self, policy: Policy, xcom_detail: str, xcom_max_jobs: int) -> None:
        self._init_xcom(xcom_detail, xcom_max_jobs)
        self.policy = policy

    def _read_back(self, event: dict[str, Any]) -> dict[str, Any]:
        """The full event a trigger's compact one stands for (:func:`~airflow_batch_jobs.verdict_event.resolve_event`).
        A read that fails as a poll can (throttling, 5xx, a dropped connection, a job not returned) is tried again,
        after 1, 2, 4 ... s (at most :data:`READ_BACK_PAUSE_MAX_S`), up to ``max_poll_errors`` times in all, as a poll
        would be; then the task fails with the last error, as after that many failed polls. The verdict itself never
        changes: a fault can delay it or fail the wait, never turn it into another one."""
        from airflow.providers.common.compat.sdk import AirflowFailException
        from botocore.exceptions import BotoCoreError, ClientError

        from airflow_batch_jobs.verdict_event import UnresolvedEventError, resolve_event
        from airflow_batch_jobs.watch import rejected_request

        attempts = max(1, int(getattr(self, "max_poll_errors", 1)))
        for attempt in range(1, attempts + 1):
            try:
                return resolve_event(event, self.hook, self.xcom_detail)
            except (ClientError, BotoCoreError, UnresolvedEventError) as err:
                rejected = rejected_request(err)
                if rejected is not None:
                    raise AirflowFailException(rejected) from err
                if attempt == attempts:
                    raise AirflowFailException(
                        f"The wait's verdict is in ({event.get('status')}), but the jobs it names could not be read "
                        f"back from AWS Batch for its records, message and links: {attempts} reads in a row failed; "
                        f"last error: {err}"
                    ) from err
                pause = min(2.0 ** (attempt - 1), READ_BACK_PAUSE_MAX_S)
                self.log.warning("Reading back the verdict's jobs failed (%s); trying again in %.0f s.", err, pause)
                time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def finish(self, context: Any, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Turn a verdict event into the task's outcome: records returned (success), or pushed then skip / fail.

        Returns None while the verdict is still 'waiting'. Failed jobs make the task fail without Airflow retries
        (a retry would see the same failed jobs); ``soft_fail`` on a sensor turns that into a skip. A trigger's
        compact event is first made whole with the jobs it names, read back from AWS Batch (:meth:`_read_back`).
        """
        from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSkipException

        from airflow_batch_jobs.links import persist_links
        from airflow_batch_jobs.log_tail import show_log_tails
        from airflow_batch_jobs.verdict_event import is_compact

        status = event.get("status")
        if status == "waiting":
            return None
        if status == "error" and event.get("internal"):  # a bug of ours: Airflow's retries apply, as in poke mode
            raise AirflowException(event.get("message", "the wait failed"))
        if status == "error":
            raise AirflowFailException(event.get("message", "the wait failed"))
        if is_compact(event):
            event = self._read_back(event)
        records = event.get("records", [])
        self.log_cut(len(records), event.get("cut", 0))
        persist_links(context, self, self.hook, event.get("links"))
        if status == "success":
            self.log.info(event["message"])
            return records
        ti = context.get("ti")  # a test's bare context has none: the verdict stands, with nothing to push to
        if self.do_xcom_push and self.xcom_detail != "none" and ti is not None:
            ti.xcom_push(key="return_value", value=records)
        show_log_tails(self, event)  # bounded; never raises
        if status == "skip":
            raise AirflowSkipException(event["message"])
        raise AirflowFailException(event["message"])
