/** Every reproduction registers itself on import; this list is the one place that imports them. */
import './reproduce-hier-moea.js';
import './reproduce-pmp.js';
import './reproduce-evo-pop.js';
import './reproduce-sweep.js';
export {};
