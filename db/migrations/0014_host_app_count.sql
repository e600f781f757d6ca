ALTER TABLE `hosts` ADD `app_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE `hosts` SET `app_count` = (SELECT count(*) FROM `apps` WHERE `apps`.`host_id` = `hosts`.`id`);--> statement-breakpoint
CREATE TRIGGER `apps_host_count_insert` AFTER INSERT ON `apps` WHEN NEW.`host_id` IS NOT NULL
BEGIN
  UPDATE `hosts` SET `app_count` = `app_count` + 1 WHERE `id` = NEW.`host_id`;
END;--> statement-breakpoint
CREATE TRIGGER `apps_host_count_delete` AFTER DELETE ON `apps` WHEN OLD.`host_id` IS NOT NULL
BEGIN
  UPDATE `hosts` SET `app_count` = `app_count` - 1 WHERE `id` = OLD.`host_id`;
END;--> statement-breakpoint
CREATE TRIGGER `apps_host_count_move` AFTER UPDATE OF `host_id` ON `apps` WHEN NEW.`host_id` IS NOT OLD.`host_id`
BEGIN
  UPDATE `hosts` SET `app_count` = `app_count` - 1 WHERE `id` = OLD.`host_id`;
  UPDATE `hosts` SET `app_count` = `app_count` + 1 WHERE `id` = NEW.`host_id`;
END;
