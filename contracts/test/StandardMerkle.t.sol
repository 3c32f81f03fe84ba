// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {TestBase} from "./TestBase.sol";
import {StandardMerkle} from "./StandardMerkle.sol";

/// @notice The Solidity StandardMerkle helper against fixtures produced by OpenZeppelin's
/// JavaScript library (npm openzeppelin merkle-tree 1.0.8, StandardMerkleTree.of(values,
/// ["bytes32"]) over values 1..n as bytes32): same roots, same proofs.
contract StandardMerkleTest is TestBase {
    using StandardMerkle for StandardMerkle.Tree;

    function test_matchesOpenZeppelinJavaScript() public pure {
        _checkFixture(
            1,
            0xb5d9d894133a730aa651ef62d26b0ffa846233c74177a591a4a896adfda97d22,
            hex"",
            hex""
        );
        _checkFixture(
            2,
            0xe685571b7e25a4a0391fb8daa09dc8d3fbb3382504525f89a2334fbbf8f8e92c,
            hex"1ab0c6948a275349ae45a06aad66a8bd65ac18074615d53676c09b67809099e0",
            hex"b5d9d894133a730aa651ef62d26b0ffa846233c74177a591a4a896adfda97d22"
        );
        _checkFixture(
            3,
            0x6115218373392d12cc18a3d50ad2a53a2c99b391060070dfc0ebbbbe158ec944,
            hex"673620737675e2755ce8269a99904022d15da8d5843f5aec205cd243ff80240a",
            hex"1ab0c6948a275349ae45a06aad66a8bd65ac18074615d53676c09b67809099e0b5d9d894133a730aa651ef62d26b0ffa846233c74177a591a4a896adfda97d22"
        );
        _checkFixture(
            4,
            0x4c8ce3926f0293b1d281eac81d8f773dc2a9333e951e7b199adeebc7d7a2ed66,
            hex"c167b0e3c82238f4f2d1a50a8b3a44f96311d77b148c30dc0ef863e1a060dcb6673620737675e2755ce8269a99904022d15da8d5843f5aec205cd243ff80240a",
            hex"b5d9d894133a730aa651ef62d26b0ffa846233c74177a591a4a896adfda97d22673620737675e2755ce8269a99904022d15da8d5843f5aec205cd243ff80240a"
        );
        _checkFixture(
            5,
            0x21abd2f655ded75d91fbd5e0b1ad35171a675fd315a077efa7f2d555a26e7094,
            hex"2584db4a68aa8b172f70bc04e2e74541617c003374de6eb4b295e823e5beab01c949c2dc5da2bd9a4f5ae27532dfbb3551487bed50825cd099ff5d0a8d613ab5",
            hex"1ab0c6948a275349ae45a06aad66a8bd65ac18074615d53676c09b67809099e0c167b0e3c82238f4f2d1a50a8b3a44f96311d77b148c30dc0ef863e1a060dcb61a6dbeb0d179031e5261494ac4b6ee4e284665e8d2ea3ff44f7a2ddf5ca07bb7"
        );
        _checkFixture(
            7,
            0x30bdc5af9506c48acd14f3c4abaed9c8f2c530174653a20624cff023bd0a7d45,
            hex"b868bdfa8727775661e4ccf117824a175a33f8703d728c04488fbfffcafda9f9cff8e1781584200105067c0684580a1524c9539de52c1f9889e2cf73830cfcccc949c2dc5da2bd9a4f5ae27532dfbb3551487bed50825cd099ff5d0a8d613ab5",
            hex"2584db4a68aa8b172f70bc04e2e74541617c003374de6eb4b295e823e5beab01a79ebbac0bd88ae2719a62d5aaba036edfff99dd3a91dded8556a579ac7038ecc949c2dc5da2bd9a4f5ae27532dfbb3551487bed50825cd099ff5d0a8d613ab5"
        );
        _checkFixture(
            33,
            0x137ae933c29c1e273e803991850ffe79abbc2f80fb6357d9391895e939373231,
            hex"b868bdfa8727775661e4ccf117824a175a33f8703d728c04488fbfffcafda9f90339438092d949e6b8b9bbc62d987ceaec79e90f21f92ef91ec8284da86d0972c159e3a32d59642bcfbd0356857a444ce728e095009f9bb5a16df3467619c19574bb598eb9d1f1b2b5d5afa126e55d7ce29864db1b48573b9ec6682282906fb9f5bf77b9b42adf7322ee298943e46ca12a409f4f74a4471b5c6c08c948598356",
            hex"847d0fc5b1289e759eb08fc8fb04813af30323b269d2aa2022432f79cc82de22b26a293178bdc20f3bda7fdde3c2b3e0e298a08be7c4746a6fb5e17c00d342519b6c51199923b6ab7a5e0d5d2a29d7bcbb518e4abbac21a72ac513caa8d33250e9bfe43bb92df83082e79a11f1c3ae6d2b434b6d4028b7a2181804ecefe07463e2696bd296ec91e3c23e96640eefecca638fc96128ecd7e14bbd6b923500da57"
        );
        _checkFixture(
            100,
            0xd763564eca9dc776b4411204640fd14c886b8a193e63080cab6d323b8e72c1a4,
            hex"b498ef6a27d7cfc3197c2ae21f168b0ae65116837bb2f726ef9702c79103c26b0339438092d949e6b8b9bbc62d987ceaec79e90f21f92ef91ec8284da86d097263f30784aaa791123bf09d1023b1458774e546bcbd1b7d175e709d67e4fe0e9408c7a881eb032dbec2575ec18d072b43df99223c2fb99490494c0fe5588197c91e8c47a9303e0f47d9f7b45f5736f3e2cf61898bba1675addb4b4ab2fb2daf74303797228fc06c7dedae1ffdb0475f816e79517ee5cca44351963670550b891c82f439b0e60c1ce7f6ab13815ebc42165e279b65a643a248b7ac8c875e6bc6d6",
            hex"7b24b9a607de4786fbf025888eb65b3bd80a5f6bd51128cb184132e1e064160da736511d6a738d4869349b9e915fe33c126541ab2017121ccb0bdaadef27980946966efcb775e509548e76bd6d8ac290fbd8720e8de5b021df57e29813d2a88a680acfd3b2cdb34123198a8024eec697b89955d6a6c91efef55a9623564050a559bd289ffdf68978d1f3c04af7170d4ef4a922ba5240b03ca0ab413a52bac9d0303797228fc06c7dedae1ffdb0475f816e79517ee5cca44351963670550b891c82f439b0e60c1ce7f6ab13815ebc42165e279b65a643a248b7ac8c875e6bc6d6"
        );
        _checkFixture(
            1000,
            0xf022299fcf648d29b98eec0530710ca88de163fb9051b9c59c6fb37e8e1f94af,
            hex"b5defd8bbea7a0c9c2135b66a825c1da6fa99438467651d873a4d1a9322aafee4961012b60a56978f99b42b61decf8bc33a561fb1fdb4bb734ce9e377384b348fe9823b991f1d878fe5cee5c2a94ccb18bc6135c17739487ba3c93951e5791b2f0beaa4b630702094cf19e026bc833e72a6a7285e06a8f3164c5a4e1d75268420a92cd781688e7525a266f9b21cae54f1b6d044485e36ece5795ae3c9c57f7c0ef4dd9b4fd3e10e4ad265c4471df57908fd22d1a5e71a4179961f89ec69f2b976995349dc415fea9bfff6868989b1ab9162f4b0cd3a5886771e0ddef9e4b67f16bb9ea705ed2660dce5497f0d89e43adf9b86488d8131daafd11a22c14fab8931f8f21f70f52ef80382610fb38037f28011eaea0703d1e21ff9e61da9cc1f7bb84f2e920eadf1eb588c77c3a766963b32e551261ef2d695edc80122d97bc9e23",
            hex"dfe62e56ef81544d21bd561f5c6e59fb45b53a751b2e3e6c81ce4e98c0d6c3cfb860c36def8ab9a44e7ff981ede01d121a682023aa7a69af511a39c0851a23d30f0cba9a9de9d0562b6b6deed7e5e0cdab8603aa43fe5577292e2a75abea09cad52aa3139d6a17b6a03d1b6ed2b4c3fafd287671960fde40aaead1b467e30142f727b7efd2b706218c8a302597ad76b77a2de8b7d68bfc2508a4ba6120f4c8127fdf2d95c3435656afa8ef0cba016b5f010e3dc7133d362b07a12e10f16579f918b9e154cbf553c3a821e15a668ecbbe04e3254dfbd081b0743f46b2033cc696479bf970053ddc57cf2a97925db724c87c890cf4ac8e8cb629eae3d1dacb5bba66097ecd40991c04d3074e81b77e23a8cb2fa99107e1270a7264e956470789e384f2e920eadf1eb588c77c3a766963b32e551261ef2d695edc80122d97bc9e23"
        );
    }

    function testFuzz_everyProofVerifiesWithMerkleProof(uint256 seed, uint16 sizeRaw) public pure {
        uint256 n = 1 + (uint256(sizeRaw) % 300);
        bytes32[] memory values = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) values[i] = keccak256(abi.encode(seed, i));
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        for (uint256 i = 0; i < n; ++i) {
            bytes32[] memory proof = tree.proof(values[i]);
            assertTrue(
                MerkleProof.verify(proof, tree.root(), StandardMerkle.leafHash(values[i])),
                "proof verifies"
            );
            assertEq(StandardMerkle.processProof(values[i], proof), tree.root(), "processProof");
        }
        (bool found, ) = tree.indexOf(keccak256(abi.encode(seed, "absent")));
        assertFalse(found, "absent value not found");
    }

    function _checkFixture(
        uint256 n,
        bytes32 expectedRoot,
        bytes memory firstProof,
        bytes memory lastProof
    ) private pure {
        bytes32[] memory values = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) values[i] = bytes32(i + 1);
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        assertEq(tree.root(), expectedRoot, "root");
        _assertProof(tree.proof(values[0]), firstProof);
        _assertProof(tree.proof(values[n - 1]), lastProof);
    }

    function _assertProof(bytes32[] memory proof, bytes memory expected) private pure {
        assertEq(proof.length, expected.length / 32, "proof length");
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 node;
            assembly ("memory-safe") {
                node := mload(add(add(expected, 0x20), mul(i, 0x20)))
            }
            assertEq(proof[i], node, "proof node");
        }
    }
}
