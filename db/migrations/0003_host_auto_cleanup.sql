ALTER TABLE `hosts` ADD `auto_cleanup` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX `commands_host_action` ON `commands` (`host_id`,`action`);