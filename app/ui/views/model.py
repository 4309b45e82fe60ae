"""Model: the trained models and which one serves, how the serving multi-task model does per task, against
the ablations, how it trained, how it uses its experts and feature groups, and a 2-D map of the catalog's
video embeddings by category."""

import altair as alt
import pandas as pd
import streamlit as st

from app.ui import state
from app.ui.widgets import md
from index import browse
from ingest.learning.checkpoint import model_list
from ingest.store import catalog_version

HEADLINE = (
    (("click", "auc"), "click AUC"),
    (("click", "gauc"), "click GAUC"),
    (("like", "auc"), "like AUC"),
    (("watch", "mae"), "watch MAE"),
    (("category", "accuracy"), "category accuracy"),
    (("context", "accuracy"), "context accuracy"),
    (("ranking", "ndcg_at_10"), "ranking NDCG@10"),
    (("retrieval", "recall_at_10"), "retrieval recall@10"),
    (("click", "auc_vs_oracle"), "click AUC / oracle"),
)

vidrec = state.api()
key = catalog_version(state.data_path())


@st.cache_data(max_entries=4, show_spinner="Projecting the embeddings…")
def embedding_map(path: str, version: tuple, field: str) -> list[dict]:
    return browse.embedding_map(vidrec.store, field)


def models_table(models: list[dict]) -> pd.DataFrame:
    """One row per model, plain values (ids and reasons are shown as text, never as markup)."""
    return pd.DataFrame(
        [
            {
                "model": m["model_id"],
                "created": m["created_at"],
                "CLIP version": m["clip_version"],
                "architecture": m["arch"],
                "click AUC": (m["metrics"].get("click") or {}).get("auc"),
                "serving": m["serving"],
                "pinned": m["pinned"],
                "usable": m["usable"],
                "why not": m["reason"] or "",
            }
            for m in models
        ]
    )


st.title("Model")
models = model_list(vidrec.store)
serving = next((m["model_id"] for m in models if m["serving"]), None)
report = browse.model_report(vidrec.store, serving)  # none serves: the newest, marked stale below
if report is None:
    st.info("No trained model yet: run `vidrec train` (or `vidrec demo`). The embedding map below needs none.")
else:
    split = report["split"]
    st.markdown("##### Models")
    st.dataframe(
        models_table(models),
        hide_index=True,
        width="stretch",
        column_config={"click AUC": st.column_config.NumberColumn(format="%.4f")},
    )
    st.caption(
        "The pinned model serves while it can, else the newest usable one. Pin one with `vidrec models use ID`; "
        "`vidrec models use --newest` unpins. The rest of this page is about the model that serves (the newest "
        "when none can)."
    )
    st.caption(
        f"{'Serving: ' if report['model_id'] == serving else ''}"
        f"{md(report['model_id'])} · {md(report['arch'])} · trained {md(report['created_at'])} on CLIP "
        f"version {report['clip_version']} in {report['seconds'] or 0:g} s · {split.get('train', 0):,} "
        f"training, {split.get('val', 0):,} validation and {split.get('test', 0):,} test impressions"
    )
    if report["stale"]:
        st.warning("The catalog's CLIP has changed since this model was trained: retrain with `vidrec train`.")

    metrics_tab, ablation_tab, curves_tab, experts_tab, map_tab = st.tabs(
        ["Metrics", "Ablations", "Curves", "Experts", "Map"]  # short: five tabs fit a phone's width
    )
    with metrics_tab:
        if report["metrics"]:
            values = {(r["task"], r["metric"]): r["value"] for r in report["metrics"]}
            shown = [(label, values[k]) for k, label in HEADLINE if k in values]
            for start in range(0, len(shown), 6):
                for column, (label, value) in zip(st.columns(6), shown[start : start + 6]):
                    column.metric(label, f"{value:.3f}")
            with st.expander("Every metric"):
                st.dataframe(
                    pd.DataFrame(report["metrics"]),
                    hide_index=True,
                    width="stretch",
                    column_config={"value": st.column_config.NumberColumn(format="%.4f")},
                )
            st.caption(
                "On the test period (the latest stretch of the log). AUC, GAUC, accuracy, NDCG and recall: "
                "higher is better; log loss and MAE: lower is better."
            )
        else:
            st.info("The model's folder has no metrics.")
    with ablation_tab:
        if report["ablations"]:
            st.dataframe(pd.DataFrame(report["ablations"]), hide_index=True, width="stretch")
            st.caption(f"From {md(report['ablations_file'])}")
        else:
            st.info(
                "No ablation table saved yet: `vidrec eval --ablations` compares single-task, shared-bottom, "
                "MMoE and PLE, with and without context, video only and text only."
            )
    with curves_tab:
        curves = pd.DataFrame(report["curves"])
        if curves.empty:
            st.info("The model's folder has no training curves.")
        else:
            for net, frame in curves.groupby("net", sort=False):
                loss = frame[frame.series.str.startswith("train loss")]
                val = frame[~frame.series.str.startswith("train loss")]
                left, right = st.columns(2)
                for column, part, title in ((left, loss, "training loss"), (right, val, "validation")):
                    column.altair_chart(
                        alt.Chart(part, title=f"{net}: {title}")
                        .mark_line(point=True)
                        .encode(
                            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
                            y=alt.Y("value:Q", scale=alt.Scale(zero=False)),
                            color=alt.Color("series:N", title=None),
                            tooltip=["series", "epoch", "value"],
                        ),
                        width="stretch",
                    )
            if report["best_epochs"]:
                best = report["best_epochs"]  # {"all": n} for one network, else {task: n}
                kept = str(best["all"]) if list(best) == ["all"] else ", ".join(f"{md(k)} {v}" for k, v in best.items())
                st.caption(f"Best (kept) epoch: {kept}")
    with experts_tab:
        for warning in report["warnings"]:
            st.warning(md(warning))
        left, right = st.columns(2, gap="large")
        with left:
            st.markdown("##### Expert use per task")
            if report["experts"]:
                st.altair_chart(
                    alt.Chart(pd.DataFrame(report["experts"]))
                    .mark_bar()
                    .encode(
                        x=alt.X("share:Q", stack="normalize", title="share of the task's gate weight"),
                        y=alt.Y("task:N", title=None),
                        color=alt.Color("expert:N", title=None),
                        tooltip=["net", "task", "expert", alt.Tooltip("share:Q", format=".3f")],
                    ),
                    width="stretch",
                )
                st.caption("Mean gate weights on validation impressions: a task on one expert alone has collapsed.")
            else:
                st.info(f"No expert gates to show ({md(report['arch'])} has none, or the model predates diagnostics).")
            st.markdown("##### Learnt feature-group gates")
            if report["gates"]:
                st.altair_chart(
                    alt.Chart(pd.DataFrame(report["gates"]))
                    .mark_bar()
                    .encode(
                        x=alt.X("gate:Q", scale=alt.Scale(domain=[0, 1]), title="gate (0 off, 1 fully on)"),
                        y=alt.Y("group:N", sort="-x", title=None),
                        color=alt.Color("net:N", legend=None),
                        tooltip=["net", "group", alt.Tooltip("gate:Q", format=".3f")],
                    ),
                    width="stretch",
                )
                st.caption(
                    "Learnable gates over feature groups with a sparsity penalty: a group the model can do "
                    "without drifts towards 0."
                )
        with right:
            st.markdown("##### Feature-group importance per task")
            if report["importance"]:
                st.altair_chart(
                    alt.Chart(pd.DataFrame(report["importance"]))
                    .mark_rect()
                    .encode(
                        x=alt.X("group:N", title=None),
                        y=alt.Y("task:N", title=None),
                        color=alt.Color("drop:Q", scale=alt.Scale(scheme="blueorange", domainMid=0), title="drop"),
                        tooltip=["net", "task", "group", alt.Tooltip("drop:Q", format=".4f")],
                    )
                    .properties(height=260),
                    width="stretch",
                )
                st.caption(
                    "Permutation importance: how much each task's main validation metric drops when one "
                    "feature group is shuffled across impressions (higher: the task leans on it)."
                )
            else:
                st.info("No permutation importance saved with this model.")

map_area = map_tab if report is not None else st.container()
with map_area:
    field = st.segmented_control("Embedding", ["frames", "text"], default="frames", key="map_field") or "frames"
    points = pd.DataFrame(embedding_map(str(state.data_path()), key, "video_emb" if field == "frames" else "text_emb"))
    if points.empty:
        st.info("No embeddings yet.")
    else:
        st.altair_chart(
            alt.Chart(points)
            .mark_circle(size=70, opacity=0.8)
            .encode(
                x=alt.X("x:Q", title="PC 1"),
                y=alt.Y("y:Q", title="PC 2"),
                color=alt.Color("category:N", scale=alt.Scale(scheme="tableau20")),
                tooltip=["video_id", "title", "category"],
            )
            .properties(height=520)
            .interactive(),
            width="stretch",
        )
        st.caption(f"{len(points):,} videos, CLIP {field} embeddings projected with PCA, coloured by category.")
