// What a trader may do to an order in the blotter: exactly what the order decider accepts for its
// status (tests/e2e/test_ui.py checks this table against the decider, status by status).
const BOTH = Object.freeze(["cancel", "amend"]);
const NONE = Object.freeze([]);

/** Status → actions, for an order Meltica holds or a venue works. REPLACED is open again with its
 * new terms; a pending cancel or amend takes nothing more until the venue answers it. */
export const ACTIONS = Object.freeze({
  PENDING_NEW: NONE, // risk has not decided yet: the book does not know the order
  ACCEPTED: BOTH, // held here (a trigger, an OTO parent): canceled or amended at once
  TRIGGERED: BOTH, // fired here, not yet sent
  SUBMITTED: BOTH,
  NEW: BOTH,
  REPLACED: BOTH,
  PARTIALLY_FILLED: BOTH,
  PENDING_CANCEL: NONE,
  PENDING_REPLACE: NONE,
  DENIED: NONE,
  REJECTED: NONE,
  FILLED: NONE,
  CANCELED: NONE,
  EXPIRED: NONE,
});

/** Statuses that allow less once the order is at its venue (it has a venue order id): a stop the
 * venue triggered has no move to PENDING_CANCEL in the status table. */
const AT_VENUE = Object.freeze({ TRIGGERED: Object.freeze(["amend"]) });

/** The actions `o` (an order row of the API) takes. */
export function actions(o) {
  return (o.venue_order_id != null && AT_VENUE[o.status]) || ACTIONS[o.status] || NONE;
}

const LIMIT_PRICED = new Set(["LIMIT", "STOP_LIMIT", "TRAILING_STOP_LIMIT"]);
const UNTRIGGERED = new Set(["MARKET", "LIMIT"]);

/** The terms an amend of an order of `type` may change. */
export function amendable(type) {
  return ["quantity", ...(LIMIT_PRICED.has(type) ? ["price"] : []), ...(UNTRIGGERED.has(type) ? [] : ["trigger_price"])];
}
