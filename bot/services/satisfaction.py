"""Per-customer satisfaction scores for the refresh: loads the inputs, calls analytics."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlmodel import Session

from analytics.satisfaction import (
    CustomerSatisfaction,
    customer_satisfaction,
    decayed_sentiment,
    survey_means,
)
from db import analytics_queries as aq


def score_customers(
    session: Session,
    ids: np.ndarray,
    *,
    as_of: datetime,
    unresolved: np.ndarray,
    handoffs: np.ndarray,
) -> CustomerSatisfaction:
    """Satisfaction 0–100 for the customers ``ids`` (sorted), as of ``as_of``."""
    answer_ids, kinds, scores, _ = aq.survey_answers(session=session, as_of=as_of)
    means = survey_means(ids, answer_ids, kinds, scores)
    message_ids, ages, sentiment = aq.message_sentiments(session=session, as_of=as_of)
    rows = np.searchsorted(ids, message_ids)
    known = (
        (rows < ids.shape[0]) & (ids[np.minimum(rows, max(ids.shape[0] - 1, 0))] == message_ids)
        if ids.shape[0]
        else rows < 0
    )
    mood = decayed_sentiment(rows[known], ages[known], sentiment[known], n_customers=ids.shape[0])
    return customer_satisfaction(
        csat_mean=means.csat_mean,
        nps_mean=means.nps_mean,
        sentiment=mood.mean,
        sentiment_weight=mood.weight,
        unresolved=unresolved,
        handoffs=handoffs,
    )
