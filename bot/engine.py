"""Run image turns: reserve credits, call the model with the session's history, store, commit or refund."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from bot.catalog import lookup
from bot.charges import Charge, mark_failed, refund_quietly
from bot.errors import UserError
from bot.gemini import Content, GeminiError, ImageRequest
from bot.gemini.outcomes import ImagesDelivered, Outcome
from bot.images import ImageRejected, fit_upload
from bot.logs import TURN_ID
from bot.models import Button, Invocation, OutImage, Reply
from bot.quotas import QuotaRefused
from bot.services import Services
from bot.sessions import build_history, load_content, save_content, wire_size
from bot.store.base import Reservation, SessionRow, TurnResult, TurnRow

log = logging.getLogger(__name__)
MISSING_HISTORY = "This session's history lost an image, so I can't continue it. Start over with /reset."


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """One model call to make.

    Attributes:
        kind: imagine, edit, retry, upscale or variation.
        prompt: The user's words (shown in captions and stored).
        parent: The turn it builds on (None for a session's first turn).
        model: Model id.
        aspect_ratio: Requested aspect ratio, None for the model's choice.
        image_size: Requested size, None for 1K.
        references: New reference images (data, mime).
        request_json: A stored user content to send again as it was (retry, variations); overrides prompt/refs.
        caption: What the caption quotes, when not the prompt.
        instruction: The words sent to the model, when not the prompt (upscale): the turn keeps the user's prompt,
            so its caption, retry, variations and undo never show the bot's own instruction.
    """

    kind: str
    prompt: str
    parent: TurnRow | None
    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    references: tuple[tuple[bytes, str], ...] = ()
    request_json: str | None = None
    caption: str | None = None
    instruction: str | None = None

    @property
    def size(self) -> str:
        return self.image_size or "1K"

    @property
    def words(self) -> str:
        """The text of the user content sent to the model."""
        return self.instruction or self.prompt


@dataclass(frozen=True, slots=True)
class TurnDone:
    """What one planned turn ended in."""

    turn_id: str
    plan: TurnPlan
    outcome: Outcome | None = None
    error: str = ""
    usd: float = 0.0


async def run_turns(inv: Invocation, services: Services, session: SessionRow, plans: list[TurnPlan]) -> list[Reply]:
    """Run the plans (variations side by side) and answer; delivered turns become charges settled on posting."""
    for plan in plans:
        check_plan(plan)
    now = services.now()
    costs = [(services.settings.credits_for(p.size), lookup(p.model).usd_per_image(p.size)) for p in plans]
    if len(plans) > 1:  # variations: refuse the set as a whole before reserving any of it
        short = await services.ledger.precheck(inv.user, credits=sum(c for c, _ in costs), now=now)
        if short is not None:
            return [Reply(text=short.message, ephemeral=True, error=True)]
    # One plan: its reservation refuses with the same message, so a precheck would only read the store twice.
    held: list[Reservation] = []
    spent: dict[str, float] = {}  # reservation id → USD for the budgets (see _run_one), refunded or committed
    handed_off: set[str] = set()
    try:
        for credits, usd in costs:
            reservation = await services.ledger.reserve(inv.user, credits=credits, usd=usd, now=now)
            if isinstance(reservation, QuotaRefused):
                return [Reply(text=reservation.message, ephemeral=True, error=True)]
            held.append(reservation)
        done = await asyncio.gather(
            *(_run_one(inv, services, session, p, r, spent) for p, r in zip(plans, held, strict=True))
        )
        for turn, reservation in zip(done, held, strict=True):
            spent[reservation.id] = turn.usd
        replies = [await _reply_for(inv, services, turn) for turn in done]
        # Handed off together, once every reply is built: if building one fails (or is cancelled), none of the
        # replies is posted, so every reservation must still be the finally's to refund.
        batch = uuid.uuid4().hex
        for turn, reservation, reply in zip(done, held, replies, strict=True):
            if reply.receipts:
                services.charges[turn.turn_id] = Charge(reservation, turn.usd, turn.turn_id, session.id, batch)
                handed_off.add(reservation.id)
        return replies
    finally:
        # Anything not handed to a charge was not delivered: refund it, also on errors and cancellation.
        for reservation in held:
            if reservation.id not in handed_off:
                await refund_quietly(services, reservation, usd=spent.get(reservation.id, 0.0))


def check_plan(plan: TurnPlan) -> None:
    """Refuse what the model can't do (size, aspect ratio, references) before anything is reserved.

    Raises:
        UnsupportedOptionError: with what the model offers instead.
    """
    _request_for(plan, Content.user(plan.words, plan.references)).validate()


async def _run_one(
    inv: Invocation,
    services: Services,
    session: SessionRow,
    plan: TurnPlan,
    reservation: Reservation,
    spent: dict[str, float],
) -> TurnDone:
    """Run one turn; `spent[reservation.id]` holds its estimated USD while its call is out (a turn cancelled then
    may still be billed: USD budgets count it, while its credits go back), and the returned TurnDone the figure."""
    store = services.store
    turn_id = uuid.uuid4().hex
    TURN_ID.set(turn_id)
    recording: asyncio.Task[None] | None = None
    outcome: Outcome | None = None
    finished = False
    try:
        if plan.request_json is not None:
            user = await load_content(store, plan.request_json)
        else:
            user = Content.user(plan.words, plan.references)
        settings = services.settings
        history = await build_history(
            store,
            parent=plan.parent,
            model=lookup(plan.model).id,
            keep=settings.history_turns,
            budget=settings.max_request_bytes - wire_size(user),
        )
        if history.carried and plan.request_json is None:
            user = Content.user(plan.words, (*history.carried, *plan.references))
        request = _request_for(plan, user, history.contents)
        # The user's images and the pending turn row are written while the model works: the call doesn't need
        # them, and in a burst the image writer's queue would otherwise sit in front of every call.
        recording = asyncio.create_task(_record(inv, services, session, plan, turn_id, request.spec.id, user))
        async with services.model_slots:
            spent[reservation.id] = reservation.usd
            with services.metrics.model_latency.labels(request.spec.id).time():
                outcome = await services.gemini.generate(request)
        services.metrics.turns.labels(inv.user.platform, type(outcome).__name__).inc()
        services.metrics.cost.inc(outcome.usage.cost_usd)
        delivered = isinstance(outcome, ImagesDelivered)
        response_json = await save_content(store, outcome.content) if outcome.content else None
        await recording  # the row exists before it is finished
        await store.finish_turn(turn_id, _result(services, plan, outcome, delivered, response_json))
        finished = True
        # Attempts given up on before this answer may have been billed too: the budgets count their estimate.
        return TurnDone(
            turn_id, plan, outcome=outcome, usd=outcome.usage.cost_usd + reservation.usd * outcome.unanswered
        )
    except (GeminiError, UserError) as exc:
        services.metrics.turns.labels(inv.user.platform, type(exc).__name__).inc()
        services.metrics.errors.labels(type(exc).__name__).inc()
        await _fail(services, turn_id, recording, type(exc).__name__, getattr(exc, "detail", "") or str(exc))
        finished = True
        usd = reservation.usd * exc.unanswered if isinstance(exc, GeminiError) else 0.0
        return TurnDone(turn_id, plan, error=exc.user_message, usd=usd)
    except LookupError as exc:  # an image of the stored history is gone from the blob store
        log.error("turn %s: %s", turn_id, exc)
        await _fail(services, turn_id, recording, "history_missing", str(exc))
        finished = True
        return TurnDone(turn_id, plan, error=MISSING_HISTORY)
    except Exception:
        services.metrics.errors.labels("unexpected").inc()
        log.exception("turn %s failed unexpectedly", turn_id)
        await _fail(services, turn_id, recording, "error", "unexpected error")
        finished = True
        # A model call that was made still cost it.
        usd = outcome.usage.cost_usd + reservation.usd * outcome.unanswered if outcome is not None else 0.0
        return TurnDone(turn_id, plan, error="Something went wrong on my side; nothing was charged.", usd=usd)
    finally:
        if not finished:  # cancelled mid-turn: never leave it pending
            await _fail(services, turn_id, recording, "cancelled", "the turn was cancelled")


async def _record(
    inv: Invocation, services: Services, session: SessionRow, plan: TurnPlan, turn_id: str, model: str, user: Content
) -> None:
    """Store the user's content (its images first) and the turn's pending row."""
    store = services.store
    await store.insert_turn(
        TurnRow(
            id=turn_id,
            session_id=session.id,
            parent_id=plan.parent.id if plan.parent else None,
            kind=plan.kind,
            user_key=inv.user.key,
            user_name=inv.user.mention,
            prompt=plan.prompt,
            model=model,
            aspect_ratio=plan.aspect_ratio,
            image_size=plan.image_size,
            request_json=await save_content(store, user),
            created_at=services.now(),
            owner=services.ledger.owner,
        )
    )


async def _fail(
    services: Services, turn_id: str, recording: asyncio.Task[None] | None, outcome: str, detail: str
) -> None:
    """Mark the turn failed once its row is written; a row that could not be written has nothing to mark."""
    if recording is not None:
        try:
            await asyncio.shield(recording)  # a cancelled turn still lets its row land, then marks it
        except asyncio.CancelledError:
            if not recording.done():  # this turn was cancelled again while it waited
                raise
            return
        except Exception as exc:  # the write itself failed: there is no row to mark
            log.warning("turn %s: its row was never written: %s: %s", turn_id, type(exc).__name__, exc)
            return
    await mark_failed(services, turn_id, outcome, detail)


def _request_for(plan: TurnPlan, user: Content, history: tuple[Content, ...] = ()) -> ImageRequest:
    return ImageRequest(
        model=plan.model,
        contents=(*history, user),
        aspect_ratio=plan.aspect_ratio,
        image_size=plan.image_size,
    )


def _result(
    services: Services, plan: TurnPlan, outcome: Outcome, delivered: bool, response_json: str | None
) -> TurnResult:
    usage = outcome.usage
    detail = getattr(outcome, "finish_reason", "") or getattr(outcome, "reason", "")
    return TurnResult(
        status="done" if delivered else "failed",
        outcome=type(outcome).__name__,
        outcome_detail=str(detail),
        finished_at=services.now(),
        response_json=response_json,
        prompt_tokens=usage.prompt_tokens,
        candidate_tokens=usage.candidate_tokens,
        thought_tokens=usage.thought_tokens,
        cost_usd=usage.cost_usd,
        credits=services.settings.credits_for(plan.size) if delivered else 0,
    )


async def _reply_for(inv: Invocation, services: Services, done: TurnDone) -> Reply:
    outcome = done.outcome
    if not isinstance(outcome, ImagesDelivered):
        message = outcome.user_message if outcome is not None else done.error
        return Reply(text=message, ephemeral=True, error=True)
    images: list[OutImage] = []
    notes: list[str] = []
    try:
        for index, part in enumerate(outcome.images, start=1):
            mime = part.mime_type or "image/png"
            image, note = await out_image(part.data or b"", mime, done.turn_id, index, inv.upload_limit)
            images.append(image)
            if note:
                notes.append(note)
    except ImageRejected as exc:
        await mark_failed(services, done.turn_id, "undeliverable", exc.user_message)
        return Reply(
            text=f"The image was made but can't be posted here: {exc.user_message} Nothing was charged.",
            ephemeral=True,
            error=True,
        )
    left = await services.ledger.left_today(inv.user, services.now())
    return Reply(
        text=_caption(inv, done.plan, outcome, left, notes),
        images=tuple(images),
        buttons=buttons_for(done),
        receipts=(done.turn_id,),
    )


async def out_image(data: bytes, mime: str, turn_id: str, index: int, upload_limit: int) -> tuple[OutImage, str]:
    """An image ready to post, re-encoded when it exceeds the platform's upload limit (with a note saying so)."""
    fitted = await fit_upload(data, mime, limit_bytes=upload_limit)
    extension = {"image/jpeg": "jpg", "image/webp": "webp"}.get(fitted.mime, "png")
    name = f"bananabot-{turn_id[:8]}-{index}.{extension}"
    return OutImage(fitted.data, fitted.mime, name, fitted.width, fitted.height), fitted.note


def buttons_for(done: TurnDone) -> tuple[Button, ...]:
    buttons = [Button("retry", "Retry", done.turn_id), Button("undo", "Undo", done.turn_id)]
    if done.plan.size not in ("2K", "4K"):
        buttons.append(Button("upscale_2k", "Upscale 2K", done.turn_id))
    if done.plan.size != "4K":
        buttons.append(Button("upscale_4k", "Upscale 4K", done.turn_id))
    buttons.append(Button("variations", "Variations", done.turn_id))
    return tuple(buttons)


def _caption(inv: Invocation, plan: TurnPlan, outcome: ImagesDelivered, left: int | None, notes: list[str]) -> str:
    spec = lookup(plan.model)
    shown = plan.caption or plan.prompt
    prompt = shown if len(shown) <= 300 else shown[:299] + "…"
    facts = [spec.nickname, plan.size]
    if plan.aspect_ratio:
        facts.append(plan.aspect_ratio)
    if left is not None:
        facts.append(f"{left} credit{'s' if left != 1 else ''} left today")
    lines = [f"“{prompt}” — {inv.user.mention}", " · ".join(facts)]
    if outcome.text and len(outcome.text) <= 500:
        lines.append(outcome.text)
    lines.extend(notes)
    return "\n".join(lines)
