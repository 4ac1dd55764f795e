export { renderSvg, writeSvg, lineSpec, frontSpec, panelLinesSpec, type XY } from './plot.js';
export { mean, std, pctMeanStd, markdownTable } from './table.js';
export { makeProgress, type Progress } from './progress.js';
