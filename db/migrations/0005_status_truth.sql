CREATE TABLE `gpu_assignments` (
	`host_id` text NOT NULL,
	`device` text NOT NULL,
	`app_id` text NOT NULL,
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`app_id`) REFERENCES `apps`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `gpu_assignments_host_device` ON `gpu_assignments` (`host_id`,`device`);--> statement-breakpoint
ALTER TABLE `apps` ADD `observed` text;--> statement-breakpoint
ALTER TABLE `commands` ADD `deadline_at` text;--> statement-breakpoint
INSERT OR IGNORE INTO `gpu_assignments` (`host_id`, `device`, `app_id`) SELECT `apps`.`host_id`, `j`.`value`, `apps`.`id` FROM `apps`, json_each(`apps`.`gpu_devices`) AS `j` WHERE `apps`.`host_id` IS NOT NULL AND `apps`.`gpu_devices` IS NOT NULL;
--> statement-breakpoint
CREATE TRIGGER `apps_gpu_release` AFTER DELETE ON `apps`
BEGIN
  DELETE FROM `gpu_assignments` WHERE `app_id` = OLD.`id`;
END;
