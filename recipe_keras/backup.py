"""R6.3 "leave it training": the epoch backups an interrupted run resumes from.

Keras's ``BackupAndRestore`` does the saving and the restoring. Around it, this
module makes the backup folder the recipe's own and the resume exact:

- the folder holds only the backup's files (``OWN_FILES``): one that is the
  project, a folder above it, or a folder holding anything else is refused, and
  once the run is written only those files are removed (Keras itself deletes the
  whole folder when training ends; here the trained weights stay backed up until
  the run is measured and written);
- Keras writes an epoch's weights, then the epoch number beside them, neither
  atomically: a kill between the two leaves weights labelled with the epoch
  before. Each backup's weights are recorded here by digest with their epoch, so
  a pair that disagrees is never resumed: the copy before it (Keras's
  ``double_checkpoint``) is, or the folder is set aside.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np

from recipe_keras.config import Config, ConfigError, dataset_kind
from recipe_keras.report import atomic_write

__all__ = [
    "BACKUP_SLACK",
    "BEST_IN_BACKUP",
    "OWN_FILES",
    "RECORD",
    "Backup",
    "check_backup_dir",
    "has_weights",
    "outputs",
    "read_json",
    "remove_backup",
    "require_room",
    "weights_bytes",
]

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
# The recipe's record of the run (``ResumeRecord``), of each backup's epoch, and the
# best model so far, staged here until the run has succeeded (``KeepBest``).
RECORD = "recipe_run.json"
DIGESTS = "recipe_backup.json"
BEST_IN_BACKUP = "best.keras"
OWN_FILES = (
    WEIGHTS,
    f"{WEIGHTS}.bkp",
    METADATA,
    f"{METADATA}.bkp",
    RECORD,
    DIGESTS,
    BEST_IN_BACKUP,
)
# atomic_write's temporary files of the recipe's own files: ".best.123.tmp.keras".
_OWN_TEMPORARY = re.compile(r"\.(recipe_run|recipe_backup|best)\.(\d+\.tmp|writing)\.(json|keras)")

# Room an HDF5 weights file needs beyond its variables' bytes (headers, names, metadata).
BACKUP_SLACK = 1 << 20


def _own(name: str) -> bool:
    return name in OWN_FILES or bool(_OWN_TEMPORARY.fullmatch(name))


def outputs(config: Config) -> list[Path]:
    """Where a project's steps write, besides the backup: none may be inside it."""
    tc = config.train
    paths = [tc.model_path, tc.best_model_path, tc.reports_dir, config.tune.directory]
    paths += [config.ensemble.model_path, config.distill.model_path]
    if dataset_kind(config.data.dataset) == "folder":
        paths.append(config.data.dataset)
    return [Path(p) for p in paths if p]


def check_backup_dir(folder: str | os.PathLike[str], keep_out: Iterable[Path] = ()) -> None:
    """Refuse a backup folder whose end-of-training clean-up could touch anything else.

    ``keep_out``: the project's folder and the other paths the run writes; the
    backup folder must be none of them and hold none of them.
    """
    folder = Path(folder)
    where = f"train.backup_dir = {str(folder)!r}"
    resolved = folder.expanduser().resolve()
    for i, other in enumerate([Path.cwd(), *keep_out]):
        other = other.expanduser().resolve()
        if resolved == other or resolved in other.parents:
            what = "the folder it runs from" if i == 0 else str(other)
            raise ConfigError(
                f"{where} holds {what}; a backup needs a folder of its own, which the "
                'recipe empties when training ends (e.g. "artifacts/backup")'
            )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{where} is a file; give a folder for the backup")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if not _own(p.name))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ConfigError(
                f"{where} holds files the recipe did not write ({shown}); give the backup "
                'a folder of its own (e.g. "artifacts/backup"): nothing else is touched'
            )


def remove_backup(folder: str | os.PathLike[str], keep: Iterable[str] = ()) -> None:
    """Delete the backup's own files (all but ``keep``), then the folder if it is empty."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _own(path.name) and path.name not in keep and path.is_file():
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something kept (the staged best model) or added
        folder.rmdir()


def require_room(folder: Path, needed: int, what: str) -> None:
    """Stop in one line (ENOSPC) before writing ``needed`` bytes (plus slack) to a disk
    that cannot hold them, rather than leave a half-written file or crash in HDF5."""
    needed += BACKUP_SLACK
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"No space left for {what} ({free // 1024} KiB free, {needed // 1024} KiB "
            "needed); free some and run again to resume",
            str(folder),
        )


def weights_bytes(model: keras.Model) -> int:
    """The bytes of a model's variables and its optimizer's: what a backup stores."""
    variables = list(model.weights)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    return sum(
        int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in variables
    )


def has_weights(folder: str | os.PathLike[str]) -> bool:
    """Whether a backup folder holds an epoch's weights to resume from (either copy)."""
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() or (folder / f"{WEIGHTS}.bkp").is_file()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


class BackupDamaged(OSError):
    """No copy in the backup folder is a pair of weights and the epoch they belong to."""


class Backup(keras.callbacks.BackupAndRestore):
    """Keras's epoch backups, kept twice, each pair checked before it is resumed.

    A backup whose weights are not the epoch its metadata names (a kill between
    Keras's two writes, an empty metadata file) falls back to the copy before it;
    when neither copy holds, the folder is renamed so the next run starts afresh,
    and training stops with one line saying so. When training ends, the trained
    weights are backed up as the finished run's, so an interruption while the run is
    measured does not lose the training; the folder goes once the run is written.
    """

    def __init__(self, backup_dir: str | os.PathLike[str]):
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
        self.folder = Path(backup_dir)

    def on_train_begin(self, logs=None):
        check_backup_dir(self.folder)
        try:
            self._restore_a_whole_pair()
            super().on_train_begin(logs)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            if not self.folder.is_dir():  # no backup to blame (an unbuilt model, ...)
                raise
            aside = self.folder.with_name(f"{self.folder.name}.damaged-{int(time.time())}")
            self.folder.rename(aside)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise OSError(
                f"the backup in {self.folder} could not be read ({reason}); it is set aside "
                f"as {aside.name}, so the next run starts over (delete it when not needed)"
            ) from error

    def _restore_a_whole_pair(self) -> None:
        """Leave the latest pair in place when it holds, else the copy before it."""
        weights, metadata = self.folder / WEIGHTS, self.folder / METADATA
        previous = (self.folder / f"{WEIGHTS}.bkp", self.folder / f"{METADATA}.bkp")
        if not any(p.exists() for p in (weights, metadata, *previous)):
            return  # a fresh run
        known = read_json(self.folder / DIGESTS).get("weights", {})

        def epoch_of(weights_file: Path, metadata_file: Path) -> int | None:
            """The epoch a pair holds, or None when its weights are not that epoch's."""
            epoch = read_json(metadata_file).get("epoch")
            if not weights_file.is_file() or not isinstance(epoch, int):
                return None
            return epoch if known.get(_digest(weights_file)) == epoch else None

        if epoch_of(weights, metadata) is not None:
            return
        before = epoch_of(*previous)
        if before is None:
            if not known and not any(read_json(p).get("epoch") for p in (metadata, previous[1])):
                # Killed while writing the very first backup: no epoch was kept yet.
                remove_backup(self.folder, keep=(RECORD, BEST_IN_BACKUP))
                return
            raise BackupDamaged(
                "neither the latest backup nor the copy before it holds the weights of the "
                "epoch it names"
            )
        print(
            f"the latest backup in {self.folder} does not hold the weights of the epoch it "
            f"names (a run killed while saving it): resuming from the copy before it, after "
            f"epoch {before}",
            flush=True,
        )
        for source, target in zip(previous, (weights, metadata), strict=True):
            atomic_write(target, lambda tmp, s=source: shutil.copyfile(s, tmp))

    def on_epoch_end(self, epoch, logs=None):
        # HDF5 can crash the process (not raise) when the disk fills mid-write: check
        # first that both copies fit, and stop in one line when they do not.
        require_room(self.folder, 2 * weights_bytes(self.model), f"epoch {epoch + 1}'s backup")
        super().on_epoch_end(epoch, logs)
        self._record(epoch + 1)

    def _record(self, epoch: int) -> None:
        """Which weights are which epoch's: the last three backups' digests."""
        path = self.folder / DIGESTS
        known = read_json(path).get("weights", {})
        known = {d: e for d, e in known.items() if e != epoch}
        known[_digest(self.folder / WEIGHTS)] = epoch
        latest = dict(sorted(known.items(), key=lambda item: item[1])[-3:])
        text = json.dumps({"weights": latest})
        atomic_write(path, lambda tmp: tmp.write_text(text))

    def on_train_end(self, logs=None):
        # The trained weights (early stopping's best, restored by now) become the
        # backup of the whole run, labelled with the planned epochs: a run interrupted
        # while it is measured resumes without training again (Keras starts fit at
        # that epoch, so it runs none). ``evaluate`` removes the folder once the run
        # is written (``runs.commit``).
        epoch = int(self.params["epochs"])
        require_room(self.folder, 2 * weights_bytes(self.model), "the trained model's backup")
        # Written as Keras writes an epoch's pair (the copy before it first, then the
        # weights, then their epoch), and recorded by digest last: a kill anywhere in
        # between leaves one whole pair to resume.
        weights, metadata = self.folder / WEIGHTS, self.folder / METADATA
        for source in (weights, metadata):
            if source.is_file():
                shutil.copyfile(source, source.with_name(f"{source.name}.bkp"))
        self.model.save_weights(weights, overwrite=True)
        metadata.write_text(json.dumps({"epoch": epoch, "batch": 0}))
        self._record(epoch)
