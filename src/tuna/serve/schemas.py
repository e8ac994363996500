"""The API schema (a compatible subset of OpenAI's, plus documented extension fields) as pydantic models.

Requests forbid unknown fields: a typo such as "step" must fail loudly instead of being ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit seed
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ chat


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ImageURL(Strict):
    url: str = Field(description="a data URL (data:image/png;base64,...); the server has no network")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Strict):
    type: Literal["image_url"]
    image_url: ImageURL


class VideoURL(Strict):
    url: str = Field(description="a data URL (data:video/mp4;base64,...)")


class VideoPart(Strict):
    type: Literal["video_url"]
    video_url: VideoURL


ContentPart = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None


class StreamOptions(Strict):
    include_usage: bool = False


class ChatRequest(Strict):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="only 1 is supported")
    presence_penalty: float = Field(0.0, ge=0, le=0, description="only 0 is supported")
    frequency_penalty: float = Field(0.0, ge=0, le=0, description="only 0 is supported")
    user: str | None = None
    video_frames: int | None = Field(
        None, ge=1, description="extension: frames sampled from each video (1 + 4k; default: the model's)"
    )

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop must be up to 4 non-empty strings")
        return stops


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


# ------------------------------------------------------------------ images

Size = Annotated[
    str, Field(pattern=r"^(auto|[0-9]{1,5}x[0-9]{1,5})$", description="'WxH' (multiples of 16) or 'auto'")
]
ResponseFormat = Literal["b64_json", "url"]  # "url" is listed only to refuse it with a clear message
OutputFormat = Literal["png", "jpeg", "webp"]
Sampler = Literal["euler", "heun", "midpoint"]


class SamplingOptions(Strict):
    """Extension fields of every text-to-visual request."""

    seed: Seed | None = Field(None, description="extension: random when omitted")
    steps: int | None = Field(None, ge=1, description="extension: sampling steps (default: the server's)")
    guidance: float | None = Field(None, ge=0, le=50, description="extension: classifier-free guidance")
    negative_prompt: str = Field("", description="extension")
    shift: float | None = Field(
        None, gt=0, le=100, description="extension: timestep shift (default: the one the model trained with)"
    )
    sampler: Sampler = Field("euler", description="extension: ODE solver")


class ImageGenerationRequest(SamplingOptions):
    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(1, ge=1)
    size: Size | None = None
    response_format: ResponseFormat | None = None
    output_format: OutputFormat = "png"
    user: str | None = None
    seed: Seed | None = Field(None, description="extension: image i uses seed + i; random when omitted")


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    output_format: OutputFormat | None = None
    size: str | None = None


# ------------------------------------------------------------------ videos


class VideoCreateRequest(SamplingOptions):
    """POST /v1/videos, as JSON or as form fields (OpenAI's client sends multipart/form-data)."""

    prompt: str = Field(min_length=1)
    model: str | None = None
    seconds: str | None = Field(
        None,
        pattern=r"^[0-9]{1,4}(\.[0-9]{1,3})?$",
        description="clip length: the frame count nearest seconds × fps of the form 1 + 4k (default: the model's frames)",
    )
    size: Size | None = None
    frames: int | None = Field(None, ge=1, description="extension: frames (1 + 4k), instead of seconds")
    fps: int = Field(8, ge=1, le=60, description="extension: frames per second of the MP4")


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(description="0 until the video is done, then 100 (sampling cannot report steps)")
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str
    seconds: str
    size: str
    error: VideoError | None = None
    remixed_from_video_id: str | None = None
    frames: int = Field(description="extension")
    fps: int = Field(description="extension")


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


# ------------------------------------------------------------------ misc


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "tuna"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    queued: int
    queue_size: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
