/** Test doubles for other packages' tests (`@gradpool/exchange/testing`). */
export { lyingOwner } from './lying-owner.js';
