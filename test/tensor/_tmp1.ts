import * as T from '../../src/index.js';
console.log(T.torchVersion(), T.getNumThreads());
const a = T.tensor([[1,2,3],[4,5,6]]);
console.log(a.toString(), a.add(T.tensor([1,2,3])).toArray());
const i = T.tensor([1,2,3], {dtype:'int64'});
console.log(i.add(1.5).dtype, i.add(T.tensor([1.5])).dtype, i.toArray());
console.log(T.memory());
