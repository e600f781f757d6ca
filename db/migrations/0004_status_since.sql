ALTER TABLE `apps` ADD `status_since` text;--> statement-breakpoint
UPDATE `apps` SET `status_since` = `updated_at` WHERE `status_since` IS NULL;--> statement-breakpoint
CREATE TRIGGER `apps_status_since_insert` AFTER INSERT ON `apps` WHEN NEW.`status_since` IS NULL
BEGIN
  UPDATE `apps` SET `status_since` = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE `id` = NEW.`id`;
END;--> statement-breakpoint
CREATE TRIGGER `apps_status_since_update` AFTER UPDATE OF `status` ON `apps` WHEN NEW.`status` IS NOT OLD.`status`
BEGIN
  UPDATE `apps` SET `status_since` = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE `id` = NEW.`id`;
END;
