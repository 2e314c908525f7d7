// The Slack-compatible body (`{"text": ...}`, what Slack, Mattermost and
// Rocket.Chat incoming webhooks take) for a receiver with format: slack.
// Pure: one line a person in a channel understands without the JSON.
import type { CloudEvent } from '../core/notification.js';

/** "1.2 s" / "850 ms": the probe's figures as people read them. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function slackText(e: CloudEvent): string {
  const d = e.data;
  const versions =
    d.fromVersion || d.toVersion ? ` (${d.fromVersion ?? '?'} → ${d.toVersion ?? '?'})` : '';
  const head = `pairshift: upgrade ${d.upgradeId} of pair ${d.pair}${versions}`;
  if (d.reason !== undefined) {
    return `:warning: ${head} is halted in ${d.phase} (${d.reason}): ${d.message}`;
  }
  if (d.previousPhase !== undefined) {
    return `${head}: ${d.previousPhase} → ${d.phase}: ${d.message}`;
  }
  const icon = d.phase === 'COMPLETE' ? ':white_check_mark:' : ':x:';
  const rolled = d.rolledBack ? ', rolled back' : '';
  const downtime = d.downtime
    ? `; longest client outage ${formatMs(d.downtime.longestMs)} (total ${formatMs(d.downtime.totalMs)})`
    : '; client outage not measured';
  return `${icon} ${head} ended ${d.phase}${rolled}: ${d.message}${downtime}`;
}

export function slackBody(e: CloudEvent): { text: string } {
  return { text: slackText(e) };
}
