export { Optimizer, SGD, Adam, AdamW, type SgdOptions, type AdamOptions, type NamedParams } from './optimizer.js';
export * as schedules from './schedule.js';
export { makeSchedule, type LrSchedule, type ScheduleConfig, type ScheduleName, SCHEDULE_NAMES } from './schedule.js';
