"""One configuration model for every process.

Sources, highest priority first: keyword arguments, environment variables (``VOXBUS_`` prefix,
``__`` between nested names, e.g. ``VOXBUS_STT__END_SILENCE_MS=400``), a TOML file (``--config``
or ``VOXBUS_CONFIG``, else ``./voxbus.toml`` when present), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voxbus.actors.stt_settings import SttSettings
from voxbus.actors.turn_settings import TurnSettings  # noqa: F401  (part of the settings' API)
from voxbus.console.settings import ConsoleSettings
from voxbus.schemas.messages import VOCABULARY_MAX_WORDS, VocabularyWord
from voxbus.sip.settings import OutboundLimits, SipSettings  # noqa: F401  (part of the settings' API)
from voxbus.supervisors.settings import SupervisionSettings
from voxbus.tools.mcp_settings import SERVER_NAME, McpServerSettings

Profile = Literal["default", "test"]
# whisper's no-speech estimate over the agent (bench/barge_words.py, 90 clips), on the cancelled line:
# at most 0.07 for words, at least 0.10 for a cough, a click, a crackle or a hum, whatever words it wrote
DOUBTED_OVER_CANCELLED = 0.2
# gated at the echo's measured delay: at most 0.29 for words, 0.44 for a hum written "True."
DOUBTED_OVER_GATED = 0.4
# the same, primed with the judge's words (stt.over_agent_cues): 56 of 58 interruptions kept, no noise
DOUBTED_OVER_GATED_CUED = 0.2  # words a click became in a call ("Have a lot.") are dropped too


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxbus"


class ModelPaths(BaseModel):
    """Override any model with your own files (unset means the profile's bundled model), and
    optionally think on an OpenAI-compatible server instead of the in-process LLM."""

    model_config = ConfigDict(extra="forbid")

    stt: Path | None = Field(default=None, description="CTranslate2 whisper model directory (English)")
    stt_multilingual: Path | None = Field(
        default=None, description="a multilingual whisper, for calls in other languages and 'auto'"
    )
    llm: Path | None = Field(default=None, description="GGUF file")
    tts: Path | None = Field(default=None, description="piper .onnx voice (its .onnx.json beside)")
    llm_url: str | None = Field(
        default=None,
        description="an OpenAI-compatible server (vLLM, llama.cpp's server, Ollama...): "
        "'http://host:port/v1'; unset: the in-process LLM. See [llm] fallback",
    )
    llm_model: str = Field(default="default", description="the model name sent to llm_url")
    llm_api_key_env: str = Field(default="", description="environment variable holding llm_url's API key")
    llm_api_key_file: Path | None = Field(default=None, description="file holding llm_url's API key")

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_clear(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"llm_api_key", "api_key"} & set(data):
            raise ValueError(
                "an API key does not go in the configuration: name an environment variable "
                "(models.llm_api_key_env) or a file (models.llm_api_key_file)"
            )
        return data

    @field_validator("llm_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return url


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting is an error, not a silent default

    system_prompt: str = (
        "You are a friendly voice assistant on a phone call. Answer in one or two short, plain "
        "sentences, without lists, markdown or emoji. If one of your replies ends with a dash, the "
        "caller cut you off there: do not repeat it, answer what they say next."
    )
    greeting: str = "Hello, how can I help you?"
    vocabulary: list[VocabularyWord] = Field(
        default_factory=list,
        max_length=VOCABULARY_MAX_WORDS,
        description="words this agent's callers say that a phone line blurs: staff names, services, "
        "places (each up to 40 characters). They go into whisper's prompt for the agent's calls; on "
        "narrowband calls they halved the errors on the names (bench/stt_wer.py)",
    )
    language: str = Field(
        default="en",
        description="the language of this agent's calls: 'en', 'fr' or any other with word lists in "
        "turn.lexicons and a voice in tts.voices; 'auto': the caller's first words choose among those",
    )
    max_tokens: int = Field(default=80, gt=0, le=2048)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    history_messages: int = Field(
        default=24, ge=0, description="at most this many past messages go to the LLM (dropped in halves)"
    )
    min_clause_chars: int = Field(
        default=12, ge=1, description="a clause shorter than this waits for more text"
    )
    first_clause_words: int = Field(
        default=4,
        ge=0,
        description="an unpunctuated first clause is cut after at least this many words, before a word "
        "that opens a word group ('Please bring your insurance card | with you.'), and the rest of its "
        "sentence at its next comma; 0: only at punctuation (README, 'A long first sentence')",
    )
    early_opener: bool = Field(
        default=True,
        description="while the caller speaks, the LLM also decodes the first word of its answer to "
        "their words so far; an acknowledgement ('Sure,', 'Of course,': turn.lexicons) is said the "
        "moment the turn ends if their last words only went on from those (README, 'Early opener')",
    )
    early_hold: bool = Field(
        default=True,
        description="with early_opener and served tools: where the answer to the caller's words so "
        "far opens with a tool call, the holding phrase is said the moment the turn ends instead of "
        "tool_hold_after_ms into the tool (README, 'Early opener')",
    )
    opener_clauses: bool = Field(
        default=True,
        description="an answer's opening word or two ('Sure,', 'Of course,') is spoken as a clause of "
        "its own, however short: the caller hears the agent a sentence sooner",
    )
    request_timeout_s: float = Field(
        default=2.0, gt=0, description="an LLM worker silent this long while streaming is asked again"
    )
    first_token_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="an LLM worker silent this long before its first chunk is asked again (a long "
        "prompt not yet cached takes seconds to evaluate: asking sooner only queues the same work)",
    )
    tools: bool = Field(
        default=False,
        description="offer the call-control tools (transfer_to_human, hang_up) to the LLM; off by "
        "default: the bundled 1.5B model does not call them and the longer prompt slows its answers",
    )
    service_tools: list[str] = Field(
        default_factory=lambda: ["*"],
        description="tools served on voxbus.tool.<name> that calls may use (shell patterns); found "
        "with $SRV.INFO when a call starts. Only holders of a 'tools' bus credential can serve one",
    )
    tool_hold_after_ms: int = Field(
        default=400, ge=0, description="a tool still running after this long: the holding phrase is said"
    )
    tool_holding_phrase: str = "One moment, let me check."
    tool_failure_phrase: str = (
        "I'm sorry, I can't check that right now. Would you like me to put you through to a colleague?"
    )
    tool_rounds: int = Field(default=3, ge=1, le=10, description="tool calls one answer may chain")
    not_heard_phrase: str = Field(
        default="Sorry, I didn't catch the {what}. Could you say that again?",
        description="said instead of another LLM round when a tool call was refused because the "
        "caller never said one of its values ({what}: them, 'day and time'); a small model, told "
        "to ask, repeats its greeting or guesses again",
    )
    transfer_target: str = Field(
        default="",
        description="SIP URI this agent's transfers go to (empty: sip.transfer_target); the gateway "
        "refuses any target that is not sip.transfer_target or in sip.transfer_allow",
    )
    warm_transfer: bool = Field(
        default=True,
        description="before a transfer, the LLM writes a summary for the person taking over "
        "(transfer.summary) while the caller hears transfer_holding_phrase; off: a blind transfer",
    )
    transfer_holding_phrase: str = "Please hold on, I'm putting you through to a colleague."
    transfer_failed_phrase: str = (
        "I'm sorry, none of my colleagues could take your call just now. I'm still here: how else can I help?"
    )
    transfer_summary_timeout_s: float = Field(default=6.0, gt=0, description="then the caller's words")
    transfer_answer_timeout_s: float = Field(
        default=45.0,
        gt=0,
        description="no outcome of a transfer after this long: the agent takes it back",
    )
    max_call_s: float = Field(default=0, ge=0, description="the agent hangs up after this long; 0: no limit")
    answering_machine: bool = Field(
        default=True,
        description="outbound calls: tell a person from an answering machine before speaking "
        "(voxbus/actors/call/answering.py); a machine gets voicemail_message after its beep",
    )
    machine_greeting_ms: int = Field(default=1800, gt=0, description="callee speech this long: a machine")
    human_pause_ms: int = Field(
        default=800, gt=0, description="a short hello then this much silence: a person"
    )
    amd_initial_silence_s: float = Field(default=4.0, gt=0, description="nobody speaks: a person waiting")
    beep_wait_ms: int = Field(
        default=1200, gt=0, description="a machine's greeting is over after this silence"
    )
    voicemail_message: str = Field(
        default="", description="left on an answering machine (a dial's own voicemail wins); empty: hang up"
    )
    start_tool: str = Field(
        default="",
        description="a served tool called when a call starts, with no arguments (it sees the caller's "
        "number and the number called), whose result the LLM is given: a CRM lookup. Empty: none",
    )


class LlmSettings(BaseModel):
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int = Field(default=2, ge=1)
    seed: int = 7
    cache_bytes: int = Field(
        default=1 << 30, ge=0, description="with parallel = 1: RAM for other calls' prompt states"
    )
    parallel: int = Field(
        default=4,
        ge=1,
        le=8,
        description="generations decoded together in one batch, each call in its own KV sequence "
        "(simultaneous calls share each step's read of the weights; 4: a gateway's calls); 1: one "
        "at a time, other calls' prompts kept in a RAM cache",
    )
    min_tokens: int = Field(
        default=0,
        ge=0,
        description="no answer ends before this many tokens (a test setting, `make test-long`: "
        "long answers on purpose, so that a test that assumes short ones fails everywhere); 0: off",
    )
    fallback: Literal["local", "none"] = Field(
        default="local",
        description="with models.llm_url: when the server fails, the in-process model answers "
        "('local', which keeps it loaded) or the answer fails ('none')",
    )
    remote_first_token_timeout_s: float = Field(
        default=3.0, gt=0, description="the server silent this long (before a token or between two): failed"
    )
    remote_connect_timeout_s: float = Field(default=1.0, gt=0)
    remote_retry_after_s: float = Field(
        default=10.0, ge=0, description="after a failure, the server is tried again this much later"
    )


class TtsSettings(BaseModel):
    length_scale: float | None = Field(default=None, gt=0)
    voices: dict[str, str] = Field(
        default_factory=lambda: {"fr": "espeak-ng:fr"},
        description="the voice of each language other than English (which speaks with models.tts): a "
        "piper .onnx file (its .onnx.json beside it), 'espeak-ng:VOICE' (Debian's espeak-ng) or "
        "'flite:VOICE' (Debian's flite, English)",
    )
    cache_max_chars: int = Field(
        default=32,
        ge=0,
        description="a clause this short, once spoken, is kept: said again, its audio is there at once",
    )
    cache_entries: int = Field(default=256, ge=0, description="clauses kept per voice; 0: none")


class AgentProfile(BaseModel):
    """One agent of a business line (``[agents.NAME]``, or a file in ``agents_dir``): the numbers
    it answers and what it changes of the ``[agent]`` settings; see voxbus/profiles.py."""

    model_config = ConfigDict(extra="forbid")

    numbers: list[str] = Field(default_factory=list, description="numbers called that reach this agent")
    agent: dict[str, Any] = Field(default_factory=dict, description="[agent] settings this agent overrides")
    outbound: OutboundLimits = Field(
        default_factory=OutboundLimits, description="what this agent may dial out to, how often"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOXBUS_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    nats_url: str | None = Field(default=None, description="NATS server URL; unset: start an embedded server")
    nats_creds: Path | None = Field(
        default=None,
        description="bus credentials file (`voxbus creds`); unset: voxbus up's own for each process",
    )
    nats_cluster: int = Field(
        default=1,
        ge=1,
        le=5,
        description="embedded NATS servers: 3 or 5 form a cluster keeping events and call state in "
        "3 or 5 copies, so that a node may die mid-call (voxbus up --cluster 3)",
    )
    nats_tls: bool = Field(
        default=False,
        description="the embedded NATS speaks TLS only, with a fleet CA and certificate made in "
        "<data_dir>/tls (voxbus certs); every credential then carries the CA",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    model_dir: Path | None = Field(
        default=None, description="where bundled models are assembled; unset: <data_dir>/models"
    )
    profile: Profile = "default"
    models: ModelPaths = ModelPaths()
    agent: AgentSettings = AgentSettings()
    stt: SttSettings = SttSettings()
    turn: TurnSettings = TurnSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    sip: SipSettings = SipSettings()
    console: ConsoleSettings = ConsoleSettings()
    agents: dict[str, AgentProfile] = Field(
        default_factory=dict, description="agent profiles by name ([agents.NAME]; see voxbus/profiles.py)"
    )
    mcp: dict[Annotated[str, StringConstraints(pattern=SERVER_NAME)], McpServerSettings] = Field(
        default_factory=dict, description="MCP servers whose tools voxbus up serves ([mcp.NAME])"
    )
    agents_dir: Path | None = Field(
        default=None, description="a folder of agent profiles, one TOML file each"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    def echo_gate_words(self) -> bool:
        """Whether the STT worker's echo gate silences whisper's audio too (``turn.echo_gate_words``;
        unset: when the gateway cancels no echo, whisper would hear it under the caller's words)."""
        if self.turn.echo_gate_words is not None:
            return self.turn.echo_gate_words
        return self.sip.echo_canceller == "off"

    def words_over_agent_no_speech(self) -> float | None:
        """Above which no-speech estimate whisper's words over the agent are a noise (unset: as
        whisper hears the line, cancelled or gated at the echo's delay, primed with the judge's
        words or not; none if gated at the loudest frame: whisper then doubts real words)."""
        if self.turn.barge_in_max_no_speech is not None:
            return self.turn.barge_in_max_no_speech
        if not self.echo_gate_words():
            return DOUBTED_OVER_CANCELLED
        if self.sip.echo_reference != "delay":
            return None
        return DOUBTED_OVER_GATED_CUED if self.stt.over_agent_cues else DOUBTED_OVER_GATED

    @field_validator("nats_cluster")
    @classmethod
    def _odd_cluster(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError(
                "a NATS cluster has an odd number of servers (1, 3 or 5): a quorum must be possible"
            )
        return size

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


class ConfigFileMissing(FileNotFoundError):
    pass


def config_file() -> Path | None:
    explicit = os.environ.get("VOXBUS_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigFileMissing(f"config file {path} (from VOXBUS_CONFIG) does not exist")
        return path
    local = Path("voxbus.toml")
    return local if local.is_file() else None


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
