-- 2.4: the keepalived driver's fastest clean handoff puts the current VIP
-- holder into FAULT (its track_file goes non-zero), so the record of a switch
-- may name that method too.
ALTER TABLE vip_switch_record DROP CONSTRAINT vip_switch_record_method_check;
ALTER TABLE vip_switch_record ADD CONSTRAINT vip_switch_record_method_check
  CHECK (method IN ('keepalived_priority', 'keepalived_stop', 'keepalived_fault', 'manual'));
