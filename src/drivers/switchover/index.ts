// The controlled switchover: the database primary and the VIP move together
// (task list 2.6.3, design step VIP_SWITCH). The choreography lives here; it
// calls the database driver (database/roles.ts) and the keepalived driver and
// owns neither. Invariants:
// - At every moment at least one node serves behind the VIP: the VIP moves
//   only to a promoted node, and a failure before the promotion starts the
//   old primary again while the VIP never left it.
// - The VIP and the primary move together: promotion and the VIP move run
//   back to back, and a re-run after any step (the plan is made from what is
//   observed, plan.ts) finishes the job without repeating anything harmful.
// - Nothing is promoted unless the standby received the old primary's last
//   record (no acknowledged write is lost); the old primary rejoins only if
//   it wrote nothing past the new timeline's branch point (never pg_rewind).
// - Verify before reporting changed: the VIP is seen from outside both nodes
//   answering from the new primary, and the old primary streams from it.
// - Time comes from the injected clock (deadlines, polling, timings).
export {
  followsAddress,
  planSwitchover,
  type SwitchoverObservation,
  SwitchoverRefused,
  type SwitchoverStep,
} from './plan.js';
export {
  observeSwitchover,
  runSwitchover,
  type SwitchoverOptions,
  type SwitchoverParts,
  type SwitchoverResult,
  type SwitchoverVip,
  switchover,
} from './switchover.js';
