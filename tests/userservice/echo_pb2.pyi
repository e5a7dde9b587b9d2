from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EchoRequest(_message.Message):
    __slots__ = ("text", "count", "delay_ms", "fail_code")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    FAIL_CODE_FIELD_NUMBER: _ClassVar[int]
    text: str
    count: int
    delay_ms: int
    fail_code: int
    def __init__(self, text: _Optional[str] = ..., count: _Optional[int] = ..., delay_ms: _Optional[int] = ..., fail_code: _Optional[int] = ...) -> None: ...

class EchoReply(_message.Message):
    __slots__ = ("text", "served_by")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    text: str
    served_by: str
    def __init__(self, text: _Optional[str] = ..., served_by: _Optional[str] = ...) -> None: ...
