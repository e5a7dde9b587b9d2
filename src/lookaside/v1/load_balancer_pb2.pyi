from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVING_STATE_UNSPECIFIED: _ClassVar[ServingState]
    SERVING: _ClassVar[ServingState]
    NOT_SERVING: _ClassVar[ServingState]
    DRAINING: _ClassVar[ServingState]
SERVING_STATE_UNSPECIFIED: ServingState
SERVING: ServingState
NOT_SERVING: ServingState
DRAINING: ServingState

class BackendInfo(_message.Message):
    __slots__ = ("id", "address", "port", "load", "service_name", "capacity", "weight", "ejected", "last_report", "serving_state", "picks", "report_age_seconds", "lease_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EJECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_FIELD_NUMBER: _ClassVar[int]
    SERVING_STATE_FIELD_NUMBER: _ClassVar[int]
    PICKS_FIELD_NUMBER: _ClassVar[int]
    REPORT_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    port: int
    load: float
    service_name: str
    capacity: int
    weight: float
    ejected: bool
    last_report: LoadReport
    serving_state: ServingState
    picks: int
    report_age_seconds: float
    lease_id: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., load: _Optional[float] = ..., service_name: _Optional[str] = ..., capacity: _Optional[int] = ..., weight: _Optional[float] = ..., ejected: _Optional[bool] = ..., last_report: _Optional[_Union[LoadReport, _Mapping]] = ..., serving_state: _Optional[_Union[ServingState, str]] = ..., picks: _Optional[int] = ..., report_age_seconds: _Optional[float] = ..., lease_id: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("success", "message", "lease_ttl_seconds", "report_interval_seconds", "lease_id", "min_report_gap_seconds")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REPORT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_REPORT_GAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    lease_ttl_seconds: float
    report_interval_seconds: float
    lease_id: str
    min_report_gap_seconds: float
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., lease_ttl_seconds: _Optional[float] = ..., report_interval_seconds: _Optional[float] = ..., lease_id: _Optional[str] = ..., min_report_gap_seconds: _Optional[float] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("id", "load", "cpu_utilization", "application_utilization", "rps_fractional", "eps", "mem_utilization", "named_metrics", "lease_id", "requests_in_flight", "latency_ms", "serving_state")
    class NamedMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    RPS_FRACTIONAL_FIELD_NUMBER: _ClassVar[int]
    EPS_FIELD_NUMBER: _ClassVar[int]
    MEM_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    NAMED_METRICS_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SERVING_STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    load: float
    cpu_utilization: float
    application_utilization: float
    rps_fractional: float
    eps: float
    mem_utilization: float
    named_metrics: _containers.ScalarMap[str, float]
    lease_id: str
    requests_in_flight: int
    latency_ms: float
    serving_state: ServingState
    def __init__(self, id: _Optional[str] = ..., load: _Optional[float] = ..., cpu_utilization: _Optional[float] = ..., application_utilization: _Optional[float] = ..., rps_fractional: _Optional[float] = ..., eps: _Optional[float] = ..., mem_utilization: _Optional[float] = ..., named_metrics: _Optional[_Mapping[str, float]] = ..., lease_id: _Optional[str] = ..., requests_in_flight: _Optional[int] = ..., latency_ms: _Optional[float] = ..., serving_state: _Optional[_Union[ServingState, str]] = ...) -> None: ...

class ServerRequest(_message.Message):
    __slots__ = ("client_id", "service_name", "hash_key", "exclude_ids")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    HASH_KEY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    service_name: str
    hash_key: str
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, client_id: _Optional[str] = ..., service_name: _Optional[str] = ..., hash_key: _Optional[str] = ..., exclude_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskRequest(_message.Message):
    __slots__ = ("input",)
    INPUT_FIELD_NUMBER: _ClassVar[int]
    input: str
    def __init__(self, input: _Optional[str] = ...) -> None: ...

class TaskResponse(_message.Message):
    __slots__ = ("result", "backend_id")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ID_FIELD_NUMBER: _ClassVar[int]
    result: str
    backend_id: str
    def __init__(self, result: _Optional[str] = ..., backend_id: _Optional[str] = ...) -> None: ...

class DeregisterRequest(_message.Message):
    __slots__ = ("id", "lease_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    lease_id: str
    def __init__(self, id: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...

class ListBackendsRequest(_message.Message):
    __slots__ = ("service_name",)
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    service_name: str
    def __init__(self, service_name: _Optional[str] = ...) -> None: ...

class ListBackendsResponse(_message.Message):
    __slots__ = ("backends", "policy")
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    policy: str
    def __init__(self, backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ..., policy: _Optional[str] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceSummary(_message.Message):
    __slots__ = ("name", "policy", "backends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: str
    backends: int
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[str] = ..., backends: _Optional[int] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[ServiceSummary]
    def __init__(self, services: _Optional[_Iterable[_Union[ServiceSummary, _Mapping]]] = ...) -> None: ...

class BackendCallStats(_message.Message):
    __slots__ = ("backend_id", "calls_finished", "calls_failed", "latency_ms_sum", "latency_ms_max")
    BACKEND_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    CALLS_FAILED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_SUM_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_MAX_FIELD_NUMBER: _ClassVar[int]
    backend_id: str
    calls_finished: int
    calls_failed: int
    latency_ms_sum: float
    latency_ms_max: float
    def __init__(self, backend_id: _Optional[str] = ..., calls_finished: _Optional[int] = ..., calls_failed: _Optional[int] = ..., latency_ms_sum: _Optional[float] = ..., latency_ms_max: _Optional[float] = ...) -> None: ...

class ClientStats(_message.Message):
    __slots__ = ("client_id", "service_name", "per_backend", "interval_seconds")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    PER_BACKEND_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    service_name: str
    per_backend: _containers.RepeatedCompositeFieldContainer[BackendCallStats]
    interval_seconds: float
    def __init__(self, client_id: _Optional[str] = ..., service_name: _Optional[str] = ..., per_backend: _Optional[_Iterable[_Union[BackendCallStats, _Mapping]]] = ..., interval_seconds: _Optional[float] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("client_id", "service_name", "accept_deltas")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_DELTAS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    service_name: str
    accept_deltas: bool
    def __init__(self, client_id: _Optional[str] = ..., service_name: _Optional[str] = ..., accept_deltas: _Optional[bool] = ...) -> None: ...

class BackendSet(_message.Message):
    __slots__ = ("service_name", "policy", "backends", "version", "full", "base_version", "removed_ids", "continued")
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REMOVED_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTINUED_FIELD_NUMBER: _ClassVar[int]
    service_name: str
    policy: str
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    version: int
    full: bool
    base_version: int
    removed_ids: _containers.RepeatedScalarFieldContainer[str]
    continued: bool
    def __init__(self, service_name: _Optional[str] = ..., policy: _Optional[str] = ..., backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ..., version: _Optional[int] = ..., full: _Optional[bool] = ..., base_version: _Optional[int] = ..., removed_ids: _Optional[_Iterable[str]] = ..., continued: _Optional[bool] = ...) -> None: ...

class ClientStatsResponse(_message.Message):
    __slots__ = ("report_interval_seconds",)
    REPORT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    report_interval_seconds: float
    def __init__(self, report_interval_seconds: _Optional[float] = ...) -> None: ...
