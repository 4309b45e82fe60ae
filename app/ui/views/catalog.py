"""Catalog: what the store holds, the files it refused and why, ingest from an upload or a folder on the
server (the new videos are searchable and shown as soon as it ends, without a restart), and a backup to a
folder on the server while the catalog is in use."""

import os
from pathlib import Path

import streamlit as st

from app.ui import state, uploads
from app.ui.widgets import category_text, grid, md, plural
from index import browse
from index.api import Vidrec
from ingest.learning import ModelError
from ingest.pipeline import IngestOptions
from ingest.store import StoreError, backup_data_dir

PER_PAGE = 18

vidrec = state.api()
summary = browse.catalog_summary(vidrec.store)
st.title("Catalog")
cols = st.columns(6)
cols[0].metric("Videos", f"{summary['videos']:,}")
cols[1].metric("Users", f"{summary['users']:,}")
cols[2].metric("Interactions", f"{summary['interactions']:,}")
cols[3].metric("Failed files", f"{summary['failed']:,}")
clip = summary["clip"]
cols[4].metric(
    "CLIP",
    "-" if clip is None else f"v{clip['version']}",
    help=None if clip is None else f"{clip['spec']}{' (tuned on this catalog)' if clip['tuned'] else ''}",
)
cols[5].metric("Models", len(summary["models"]))


def run_ingest(paths=(), manifest=None, names: dict | None = None, refused: list | None = None) -> None:
    """Ingest with a progress bar, through an API object of its own (its own store connection, so the
    pages other sessions draw meanwhile read committed data); keep the report for after the rerun. `names`:
    {generated file name: uploaded name}, so refused uploads are named as the user knows them; `refused`: the
    uploads refused before they reached the catalog ({file, reason})."""
    uploads_folder = vidrec.store.paths.uploads
    with st.status("Ingesting…", expanded=True) as status:
        bar = st.progress(0.0, text="reading files")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{done} of {total} files")

        try:
            report = Vidrec(state.data_path()).ingest(
                paths, manifest, IngestOptions(progress=False, on_progress=progress)
            )
        except ModelError as exc:  # the videos are in; only the model's own index could not follow
            st.session_state["ingest_report"] = {
                "warning": f"The videos were ingested, but the model's index could "
                f"not be updated: {' '.join(str(exc).split())}"
            }
            st.rerun()
        except StoreError as exc:  # another job kept the writer lock past the timeout: nothing was ingested
            st.session_state["ingest_report"] = {"warning": f"Nothing was ingested: {' '.join(str(exc).split())}"}
            st.rerun()
        failed = list(refused or [])
        for f in report.failed:
            file, reason = uploads.for_the_user(f["path"], f["reason"], uploads_folder, names or {})
            failed.append({"file": file, "reason": reason})
        status.update(
            label=f"Ingested {report.ingested}, {report.duplicates} already there, {len(failed)} refused",
            state="error" if failed and not (report.ingested or report.duplicates) else "complete",
        )
    keep_report(report.ingested, report.duplicates, report.updated, failed, report.seconds)


def keep_report(ingested: int, duplicates: int, updated: int, failed: list, seconds: float) -> None:
    st.session_state["ingest_report"] = {
        "ingested": ingested,
        "duplicates": duplicates,
        "updated": updated,
        "failed": failed,
        "seconds": seconds,
    }
    st.rerun()


def show_report(last: dict) -> None:
    """The last ingest: a success when nothing was refused, a warning when some files were, an error when
    every file was; the refused files by name (as uploaded), with the reasons."""
    failed = last["failed"]
    text = (
        f"Last ingest: {last['ingested']} new, {last['duplicates']} already in the catalog, "
        f"{len(failed)} refused, in {last['seconds']:.1f} s."
    )
    if failed:
        names = ", ".join(md(f["file"], 120) for f in failed[:5])
        text += f" Refused: {names}{f' and {len(failed) - 5} more' if len(failed) > 5 else ''}."
    if not failed:
        st.success(text)
    elif last["ingested"] or last["duplicates"] or last.get("updated"):
        st.warning(text)
    else:
        st.error(text)
    if failed:
        st.dataframe(failed, hide_index=True, column_config={"file": "file", "reason": "why it was refused"})


browse_tab, add_tab, failed_tab, backup_tab = st.tabs(
    ["Browse", "Add videos", f"Failed files ({summary['failed']})", "Backup"]
)

with add_tab:
    last = st.session_state.get("ingest_report")
    if last and "warning" in last:
        st.warning(last["warning"])
    elif last:
        show_report(last)
    upload_col, folder_col = st.columns(2, gap="large")
    with upload_col:
        st.markdown("#### Upload videos")
        files = st.file_uploader(
            "Video files",
            type=uploads.video_types(),
            accept_multiple_files=True,
            key="ingest_files",
            max_upload_size=uploads.UPLOAD_LIMIT_MB,
        )
        if st.button("Ingest uploaded files", disabled=not files, type="primary", key="ingest_upload"):
            saved, refused = [], []
            for f in files:
                try:
                    saved.append(
                        (
                            uploads.save_upload(
                                vidrec.store.paths.uploads, f.name, f.getvalue(), uploads.VIDEO_EXTENSIONS
                            ),
                            f.name,
                        )
                    )
                except uploads.UploadError as exc:  # refused before the catalog: named as uploaded too
                    refused.append({"file": exc.name, "reason": exc.reason})
            if saved:
                run_ingest(
                    manifest=uploads.write_manifest(vidrec.store.paths.uploads, saved),
                    names={p.name: uploads.shown_name(n) for p, n in saved},
                    refused=refused,
                )
            else:
                keep_report(0, 0, 0, refused, 0.0)
    with folder_col:
        st.markdown("#### A folder on the server")
        folder = st.text_input("Folder or file path", key="ingest_folder", placeholder="/srv/videos/new")
        if st.button("Ingest folder", disabled=not folder.strip(), key="ingest_path"):
            path = Path(folder.strip()).expanduser()
            if not path.exists():
                st.error(f"There is no {md(str(path), 200)} on the server.")
            else:
                run_ingest(paths=[path])

with browse_tab:
    filter_col, text_col, page_col = st.columns([2, 3, 1])
    category = filter_col.selectbox("Category", ["all", *summary["categories"]], key="browse_category")
    text = text_col.text_input("Title or tag contains", key="browse_text")
    total = browse.video_page(vidrec.store, 0, 1, None if category == "all" else category, text)[0]
    pages = max(1, -(-total // PER_PAGE))
    page = page_col.number_input(f"Page (of {pages})", 1, pages, 1, key="browse_page")
    videos = browse.video_page(
        vidrec.store, (page - 1) * PER_PAGE, PER_PAGE, None if category == "all" else category, text
    )[1]
    st.caption(f"{plural(total, 'video')}, newest first")
    categories = vidrec.categories([v["video_id"] for v in videos])
    grid(vidrec, videos, "catalog", columns=6, detail=lambda v: category_text(categories.get(v["video_id"])))

with failed_tab:
    if summary["failures"]:
        upload_folder = vidrec.store.paths.uploads
        prefixes = (f"{upload_folder}{os.sep}", f"{upload_folder.resolve()}{os.sep}")
        uploaded = any(f["path"].startswith(prefixes) for f in summary["failures"])
        known = uploads.original_names(upload_folder) if uploaded else {}  # an upload: the name it was given
        rows = []
        for failure in summary["failures"]:
            file, reason = uploads.for_the_user(failure["path"], failure["reason"], upload_folder, known)
            rows.append({"file": file, "reason": reason, "at": failure["at"]})
        st.dataframe(rows, hide_index=True, column_config={"reason": "why it was refused", "at": "when"})
        st.caption("Uploads are named as they were uploaded; files from the server by their path.")
    else:
        st.info("No refused files.")

with backup_tab:
    st.caption(
        "A consistent copy of this catalog (database, CLIP weights, models, indexes, uploads) while it is in use; "
        "restore it with `vidrec restore`."
    )
    destination = st.text_input(
        "A new or empty folder on the server", key="backup_dest", placeholder="/srv/backups/vidrec"
    )
    if st.button("Back up", disabled=not destination.strip(), key="backup_run"):
        try:
            with st.spinner("Backing up…"):
                done = backup_data_dir(state.data_path(), Path(destination.strip()).expanduser())
        except (StoreError, OSError) as exc:  # one line: a folder that is not empty, a full disk, ...
            st.error(md(f"No backup was made: {exc}"))
        else:
            st.success(
                md(
                    f"Backed up revision {done['revision']} ({done['videos']} videos, {done['files']} files, "
                    f"{done['bytes'] / 1e6:.1f} MB) to {done['path']} in {done['seconds']:.1f} s."
                )
            )
            for damaged in done["damaged"]:
                st.warning(md(f"Left out, damaged: {damaged['path']}: {damaged['reason']}"))
            for warning in done["warnings"]:
                st.warning(md(warning))
