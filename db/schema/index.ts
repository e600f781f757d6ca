export * from "./apps";
export * from "./audit";
export * from "./commands";
export * from "./events";
export * from "./hosts";
export * from "./templates";
export * from "./tokens";
export * from "./users";
