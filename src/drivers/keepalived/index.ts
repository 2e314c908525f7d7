// The keepalived driver (task list 2.4). Invariants:
// - The VIP's position is judged from outside both nodes (the host key that
//   answers on VIP:22) as well as from inside (`ip addr` on each node); both
//   nodes holding it is a split brain and is never acted on.
// - A move never starts towards a node whose keepalived is not running, and an
//   attempt that did not lead to a takeover undoes its release, so a node
//   always serves behind the VIP.
// - After a move the new holder has the higher priority and no node is left
//   in FAULT or stopped, so nothing flaps back.
// - keepalived.conf is edited in place (config.ts), written only if changed,
//   and keepalived is reloaded at most once per change.
export { readInstance, setPriority, type VrrpInstance } from './config.js';
export {
  KeepalivedDriver,
  type PriorityResult,
  type VipMoveOptions,
  type VipMoveResult,
} from './driver.js';
export { type OutsideAnswer, whoAnswersOnVip } from './vip-observer.js';
export {
  planVipMove,
  preferredPriorities,
  type VipMoveMethod,
  type VipObservation,
  type VipStep,
} from './vip-plan.js';
