"""`shopimage process DIR --out OUT`: a folder of product photos through the service, results in OUT.

What OUT holds:
    OUT/<photo name without extension>/white-bg.png ...  one folder per photo, renamed into place
                                                         once every file of it is written
    OUT/.shopimage/batches/<key>.json                    a batch in flight: its request and id
    OUT/.shopimage/tmp/                                  folders and zips being written

A photo whose folder exists is done: a re-run neither uploads nor pays for it. A batch in flight
when a run stopped (Ctrl-C, a crash, a lost connection) is picked up by the next run: by its id,
or, if its submit never got an answer, by sending the same request with the same
`Idempotency-Key` (a hash of the request), which the service replays instead of charging again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from tqdm import tqdm

from .service import QUOTA_EXHAUSTED, TOO_MANY_ACTIVE, Service, ServiceError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
"""Photo files the command picks up (any case)."""

DEFAULT_BATCH_SIZE = 25
"""Photos per batch: small enough that the first batch runs while later photos upload."""

POLL_SECONDS = 1.0
"""How often the batches in flight are asked for their progress."""

DOWNLOAD_TRIES = 3
REF_MAX = 100
STATE_DIR = ".shopimage"
NO_QUOTA = "not enough quota"


@dataclass
class Batch:
    """A batch this run submitted or picked up: the request (kept so a re-send replays), its id."""

    key: str
    request: dict[str, Any]
    files: list[str]
    """The input file of each item, by index."""
    id: str | None = None


class State:
    """OUT/.shopimage: one JSON file per batch in flight, and scratch space on OUT's disk (so a
    finished folder is moved into place by a rename)."""

    def __init__(self, out: Path) -> None:
        self.batches = out / STATE_DIR / "batches"
        self.scratch = out / STATE_DIR / "tmp"
        self.batches.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.scratch, ignore_errors=True)  # what an interrupted run was writing
        self.scratch.mkdir()

    def load(self) -> list[Batch]:
        paths = sorted(self.batches.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return [Batch(**json.loads(path.read_text())) for path in paths]

    def save(self, batch: Batch) -> None:
        path = self.batches / f"{batch.key}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(batch)))
        os.replace(tmp, path)

    def forget(self, batch: Batch) -> None:
        (self.batches / f"{batch.key}.json").unlink(missing_ok=True)


class Progress:
    """Two bars on stderr, photos uploaded and photos processed; off when stderr is not a terminal."""

    def __init__(self, uploads: int, items: int) -> None:
        self.uploads = tqdm(total=uploads, desc="uploaded ", unit="photo", position=0, disable=None)
        self.items = tqdm(total=items, desc="processed", unit="photo", position=1, disable=None)

    def uploaded(self) -> None:
        self.uploads.update()

    def processed(self, done: int, failed: int) -> None:
        self.items.n = done
        self.items.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
        self.items.refresh()

    def close(self) -> None:
        self.uploads.close()
        self.items.close()


def counted(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def say(text: str) -> None:
    tqdm.write(text, file=sys.stderr)


class Run:
    """One run: uploads photos, submits them in batches, follows the batches and writes their results."""

    def __init__(
        self, service: Service, out: Path, state: State, task_type: str, params: dict, batch_size: int
    ) -> None:
        self.service, self.out, self.state = service, out, state
        self.task_type, self.params, self.batch_size = task_type, params, batch_size
        self.running: list[Batch] = []
        self.written = 0
        self.skipped = 0
        self.finished = 0
        self.failed: dict[str, str] = {}
        """Input file → why it has no results (the task's error message, or the upload's refusal)."""
        self.not_processed: dict[str, str] = {}
        """Input file → why it was not sent (a name clash, the quota)."""
        self.refusal: str | None = None
        """The quota refusal that stopped the submitting."""
        self.progress: Progress | None = None
        self._polled = 0.0
        self._waiting = False

    def process_folder(self, folder: Path, balance: int) -> None:
        """The photos of `folder` not yet in OUT, and any batch an earlier run left in flight."""
        photos, clashes = find_photos(folder)
        for group in clashes:
            for photo in group:
                others = ", ".join(p.name for p in group if p != photo)
                self.not_processed[photo.name] = f"same name as {others} but for the extension or case"
        resumed = self.resume()
        in_flight = {Path(file).stem.casefold() for batch in resumed for file in batch.files}
        done = {p for p in photos if (self.out / p.stem).is_dir()}
        todo = [p for p in photos if p not in done and p.stem.casefold() not in in_flight]
        self.skipped = len(done)
        picked_up = sum(len(batch.files) for batch in resumed)
        say(
            f"{counted(len(photos) + len(self.not_processed), 'photo')} in {folder}: {len(done)} already in "
            f"{self.out}, {len(todo)} to process"
            + (f", {picked_up} picked up from an earlier run" if picked_up else "")
        )
        if len(todo) > balance:
            self.refusal = quota_message(len(todo), balance)
            self.not_processed.update(dict.fromkeys((p.name for p in todo), NO_QUOTA))
            todo = []
        self.progress = Progress(len(todo), len(todo) + picked_up)
        try:
            self.upload_and_submit(todo)
            self.finish()
        finally:
            self.progress.close()

    def resume(self) -> list[Batch]:
        """Pick up the batches an interrupted run left in flight."""
        for batch in self.state.load():
            try:
                if batch.id is None:
                    self.send(batch)
                else:
                    self.service.batch(batch.id)
                    self.running.append(batch)
            except ServiceError as exc:
                if exc.status not in (400, 404):
                    raise
                # Its uploads expired before it was sent, or it belongs to another account.
                say(f"dropped a batch left by an earlier run ({exc.message}); its photos are sent again")
                self.state.forget(batch)
        return list(self.running)

    def upload_and_submit(self, photos: list[Path]) -> None:
        """Upload `photos` and submit them `batch_size` at a time, following the batches meanwhile."""
        pending: list[tuple[Path, str]] = []
        for photo in photos:
            if self.refusal:
                self.not_processed[photo.name] = NO_QUOTA
                continue
            try:
                url = self._upload(photo)
            except ServiceError as exc:
                if exc.status != 409 or not pending:
                    raise
                # The account's room for uploads no task has used yet is full: submitting uses them.
                self.submit(pending)
                pending = []
                if self.refusal:
                    self.not_processed[photo.name] = NO_QUOTA
                    continue
                url = self._upload(photo)
            if self.progress:
                self.progress.uploaded()
            if url is not None:
                pending.append((photo, url))
            if len(pending) == self.batch_size:
                self.submit(pending)
                pending = []
            self.tick()
        if pending:
            self.submit(pending)

    def _upload(self, photo: Path) -> str | None:
        """The photo's upload URL; None when this file cannot be sent (it is counted as failed)."""
        try:
            return self.service.upload(photo)
        except OSError as exc:
            reason = f"cannot read it ({exc.strerror})"
        except ServiceError as exc:
            if exc.status not in (400, 413):  # a refusal of this file, not of the account
                raise
            reason = exc.message
        self.failed[photo.name] = reason
        self.finished += 1
        return None

    def submit(self, items: list[tuple[Path, str]]) -> None:
        body = {
            "type": self.task_type,
            "params": self.params,
            "items": [{"inputImageUrl": url, **_ref(photo.stem)} for photo, url in items],
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        batch = Batch(f"shopimage-{hashlib.sha256(canonical).hexdigest()}", body, [p.name for p, _ in items])
        self.state.save(batch)  # before sending: a run that dies waiting for the answer re-sends it
        self.send(batch)

    def send(self, batch: Batch) -> None:
        """Create the batch (a re-send of a saved one replays); wait while the account has too many."""
        while True:
            try:
                created = self.service.create_batch(batch.request, batch.key)
                break
            except ServiceError as exc:
                if exc.code == QUOTA_EXHAUSTED:
                    self.refusal = quota_message(exc.details.get("needed"), exc.details.get("balance"))
                    self.not_processed.update(dict.fromkeys(batch.files, NO_QUOTA))
                    self.state.forget(batch)
                    return
                if exc.code != TOO_MANY_ACTIVE:
                    raise
                if not self._waiting:
                    active = counted(exc.details.get("active", 0), "batch", "batches")
                    say(f"waiting: the account has {active} in progress, the service's limit")
                self._waiting = True
                time.sleep(POLL_SECONDS)
                self.tick()
        self._waiting = False
        batch.id = created["id"]
        self.state.save(batch)
        self.running.append(batch)
        say(f"batch {batch.id}: {counted(len(batch.files), 'photo')} submitted")

    def tick(self) -> None:
        """Poll the batches in flight (at most every POLL_SECONDS); collect those that completed."""
        if time.monotonic() - self._polled < POLL_SECONDS:
            return
        self._polled = time.monotonic()
        ended = 0  # items of the batches still running that have ended
        for batch in list(self.running):
            document = self.service.batch(batch.id)
            if document["status"] == "completed":
                self.collect(batch, document)
                self.running.remove(batch)
            else:
                counts = document["counts"]
                ended += document["total"] - counts.get("pending", 0) - counts.get("processing", 0)
        if self.progress:
            self.progress.processed(self.finished + ended, len(self.failed))

    def finish(self) -> None:
        """Follow the batches in flight until each has completed and its results are written."""
        while self.running:
            self.tick()
            time.sleep(0.1)

    def collect(self, batch: Batch, document: dict[str, Any]) -> None:
        tasks = sorted(document["tasks"], key=lambda t: t["index"])
        archive = self._download(batch) if any(t["status"] == "success" for t in tasks) else None
        try:
            for task, prefix in zip(tasks, zip_prefixes(tasks), strict=True):
                file = batch.files[task["index"]]
                if task["status"] != "success":
                    self.failed[file] = task.get("errorMessage") or f"task {task['status']}"
                elif archive is not None:
                    self._write(file, archive, prefix)
        finally:
            if archive is not None:
                archive.close()
                Path(archive.filename).unlink()
        self.state.forget(batch)
        self.finished += len(tasks)
        failed = sum(t["status"] != "success" for t in tasks)
        say(f"batch {batch.id}: completed, {len(tasks) - failed} succeeded, {failed} failed")

    def _download(self, batch: Batch) -> zipfile.ZipFile:
        """The batch's zip, fetched again if it arrived cut short (the service streams it)."""
        path = self.state.scratch / f"{batch.id}.zip"
        for _ in range(DOWNLOAD_TRIES):
            self.service.download(batch.id, path)
            try:
                return zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                continue
        raise ServiceError(f"the results of batch {batch.id} arrived damaged {DOWNLOAD_TRIES} times")

    def _write(self, file: str, archive: zipfile.ZipFile, prefix: str) -> None:
        """Move the entries named `prefix<name>` into OUT/<file's stem>/<name>, whole or not at all."""
        target = self.out / Path(file).stem
        if target.exists():
            return
        ours = [(i, i.filename[len(prefix) :]) for i in archive.infolist() if i.filename.startswith(prefix)]
        # Only plain file names can come from the service; anything else is not written.
        ours = [(info, name) for info, name in ours if _plain(name)]
        if not ours:
            self.failed[file] = "its results are missing from the batch's download"
            return
        folder = Path(tempfile.mkdtemp(dir=self.state.scratch))
        for info, name in ours:
            with archive.open(info) as source, (folder / name).open("wb") as dest:
                shutil.copyfileobj(source, dest)
        folder.rename(target)
        self.written += 1


def zip_prefixes(tasks: list[dict[str, Any]]) -> list[str]:
    """Where each item's files are in the batch's zip: `<ref>/<name>`, or `<position>/<name>` for an
    item without a ref; items that share a folder have their names numbered `1-`, `2-`, ... in
    item order (as `GET /api/batches/<id>/download` names them)."""
    folders = [task.get("ref") or f"{task['index'] + 1:03d}" for task in tasks]
    totals = Counter(folders)
    seen: Counter[str] = Counter()
    prefixes = []
    for folder in folders:
        seen[folder] += 1
        prefixes.append(f"{folder}/{seen[folder]}-" if totals[folder] > 1 else f"{folder}/")
    return prefixes


def _plain(name: str) -> bool:
    return name not in ("", ".", "..") and not set(name) & {"/", "\\"}


def _ref(stem: str) -> dict[str, str]:
    """The item's `ref` (its results' folder in the zip): the photo's name when the service takes it
    as one, else none (the zip then names the folder by the item's position)."""
    ok = len(stem) <= REF_MAX and stem.isprintable()
    return {"ref": stem} if ok and _plain(stem) else {}


def quota_message(needed: int | None, balance: int | None) -> str:
    return (
        f"not enough quota: {needed} photos need {needed} units and the account has {balance} left. "
        "Top up, then run the same command again (photos already in OUT are skipped)."
    )


def find_photos(folder: Path) -> tuple[list[Path], list[list[Path]]]:
    """The photos directly in `folder` (not in its subfolders; hidden files left out), by name, and
    the groups whose names differ only by extension or case: their results' folder would be one."""
    photos = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    photos = [p for p in photos if p.is_file()]
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for photo in photos:
        by_stem[photo.stem.casefold()].append(photo)
    clashes = [group for group in by_stem.values() if len(group) > 1]
    clashing = {photo for group in clashes for photo in group}
    return [p for p in photos if p not in clashing], clashes


def build_params(types: list[dict[str, Any]], task_type: str, given: dict[str, Any]) -> dict[str, Any]:
    """The batch's params from the command line, checked and typed against what the service says the
    type takes (`GET /api/task/types`), so a mistake stops the run before any upload."""
    described = next((t for t in types if t["name"] == task_type), None)
    if described is None:
        offered = ", ".join(t["name"] for t in types)
        raise click.UsageError(f"unknown --type {task_type!r}; this service offers: {offered}")
    if not described["available"]:
        raise click.ClickException(f"{task_type} is not available: {described['unavailableReason']}")
    fields = {p["name"]: p for p in described["params"]}
    params = {}
    for name, value in given.items():
        if name not in fields:
            raise click.UsageError(f"{task_type} has no param {name!r}; its params: {', '.join(fields)}")
        params[name] = _typed(fields[name], value)
    for option in described["options"]:
        if params.get(option["param"]) and not option["available"]:
            raise click.ClickException(f"--{option['param']} is not available: {option['unavailableReason']}")
    return params


def _typed(described: dict[str, Any], value: Any) -> Any:
    """A command-line string as the param's JSON type, within its allowed values and range."""
    name, kind = described["name"], described["type"]
    try:
        if kind == "boolean" and isinstance(value, str):
            value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[
                value.lower()
            ]
        elif kind == "integer":
            value = int(value)
        elif kind == "number":
            value = float(value)
    except (KeyError, ValueError):
        article = "an" if kind == "integer" else "a"
        raise click.UsageError(f"{name} must be {article} {kind}, got {value!r}") from None
    allowed = described.get("allowed")
    if allowed and value not in allowed:
        raise click.UsageError(f"{name} must be one of: {', '.join(map(str, allowed))}")
    size = len(value) if isinstance(value, str) else value
    low, high = described.get("min"), described.get("max")
    if kind != "boolean" and ((low is not None and size < low) or (high is not None and size > high)):
        raise click.UsageError(
            f"{name} must be from {low} to {high}" + (" characters" if kind == "string" else "")
        )
    return value


def _split_param(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        pairs[name] = text
    return pairs


def _check_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    if not value:
        raise click.UsageError(
            "set SHOPIMAGE_URL (or --url) to the service's address, e.g. https://shop.example.com"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is not an http(s) address like https://shop.example.com")
    return value


@click.group()
def main() -> None:
    """Process folders of product photos with a shopimage service."""


@main.command(short_help="Process a folder of photos into OUT, skipping what is done.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Where results go."
)
@click.option("--type", "task_type", default="basic_clean", show_default=True, help="Task type.")
@click.option("--template", help="basic_clean: which outputs (all, matting, white_bg, enhanced).")
@click.option("--preset", help="basic_clean: a marketplace's main-image rules (amazon, taobao, ...).")
@click.option("--hd", is_flag=True, default=None, help="basic_clean: HD cut-out, if the service has it.")
@click.option(
    "--param", "extra", multiple=True, callback=_split_param, metavar="NAME=VALUE",
    help="Any other param of the type (repeatable), e.g. --param outputSize=1600.",
)  # fmt: skip
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--url", envvar="SHOPIMAGE_URL", callback=_check_url, help="Service address [env SHOPIMAGE_URL]."
)
@click.option("--api-key", envvar="SHOPIMAGE_API_KEY", help="API key [env SHOPIMAGE_API_KEY].")
def process(
    folder: Path,
    out: Path,
    task_type: str,
    template: str | None,
    preset: str | None,
    hd: bool | None,
    extra: dict[str, str],
    batch_size: int,
    url: str,
    api_key: str | None,
) -> None:
    """Process every photo in FOLDER (jpg, jpeg, png, webp; not its subfolders) into OUT/<photo name>/.

    Photos whose folder is already in OUT are skipped (no upload, no charge). The exit status is 1
    when any photo has no results; the summary says which and why.
    """
    if not api_key:
        raise click.UsageError("set SHOPIMAGE_API_KEY (or --api-key) to an API key (sk_...) of your account")
    chosen = {"template": template, "preset": preset, "hd": hd}
    given = {name: value for name, value in chosen.items() if value is not None} | extra
    service = Service(url, api_key)
    try:
        params = build_params(service.task_types(), task_type, given)
        balance = service.balance()
    except ServiceError as exc:
        raise click.ClickException(_explain(exc)) from None
    service.patient()

    out.mkdir(parents=True, exist_ok=True)
    run = Run(service, out, State(out), task_type, params, batch_size)
    try:
        run.process_folder(folder, balance)
    except KeyboardInterrupt:
        say(_in_flight("interrupted", run))
        sys.exit(130)
    except ServiceError as exc:
        raise click.ClickException(_in_flight(_explain(exc), run)) from None
    sys.exit(_summary(run))


def _summary(run: Run) -> int:
    """Print what happened; the exit status: 1 when any photo has no results."""
    click.echo(
        f"{run.written} written to {run.out}, {run.skipped} already there, {len(run.failed)} failed, "
        f"{len(run.not_processed)} not processed"
    )
    for title, reasons in (("failed", run.failed), ("not processed", run.not_processed)):
        if reasons:
            click.echo(f"{title}:")
            for file, reason in sorted(reasons.items()):
                click.echo(f"  {file}: {reason}")
    if run.refusal:
        click.echo(f"Error: {run.refusal}", err=True)
    return 1 if run.failed or run.not_processed else 0


def _explain(exc: ServiceError) -> str:
    if exc.status == 401:
        return f"the service refused the API key ({exc.message}): check SHOPIMAGE_API_KEY"
    if exc.details:
        return f"{exc.message}: {json.dumps(exc.details)}"
    return exc.message


def _in_flight(message: str, run: Run) -> str:
    if not run.running:
        return message
    return (
        f"{message}\n{counted(len(run.running), 'batch', 'batches')} still in progress on the service; run the same "
        "command again to collect their results (they are not charged again)"
    )
