export { Module, type ForwardHook } from './module.js';
export * from './layers.js';
export * as init from './init.js';
export { initWeight, INIT_NAMES, type InitName } from './init.js';
export * as functional from './functional.js';
export * from './transformer.js';
