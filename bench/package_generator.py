"""Writes large, valid pacs.008 packages (A100, ICBC → BOC) for benchmarks and tests.

The file is written in chunks, so a package of a million transactions never sits in memory.
``defect_at`` puts one schema defect (a non-numeric amount) into that transaction.
"""

from __future__ import annotations

from pathlib import Path

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<Message xmlns="urn:isogw:xsd:envelope.001.01">
  <AppHdr xmlns="urn:iso:std:iso:20022:tech:xsd:head.001.001.02">
    <Fr><FIId><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>102100099996</MmbId></ClrSysMmbId></FinInstnId></FIId></Fr>
    <To><FIId><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>999999999999</MmbId></ClrSysMmbId></FinInstnId></FIId></To>
    <BizMsgIdr>{message_id}</BizMsgIdr>
    <MsgDefIdr>pacs.008.001.08</MsgDefIdr>
    <CreDt>2026-11-23T09:00:00+08:00</CreDt>
  </AppHdr>
  <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">
    <FIToFICstmrCdtTrf>
      <GrpHdr>
        <MsgId>{message_id}</MsgId>
        <CreDtTm>2026-11-23T09:00:00+08:00</CreDtTm>
        <NbOfTxs>{count}</NbOfTxs>
        <CtrlSum>{control_sum}</CtrlSum>
        <IntrBkSttlmDt>2026-11-23</IntrBkSttlmDt>
        <SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>
        <PmtTpInf><CtgyPurp><Prtry>A100</Prtry></CtgyPurp></PmtTpInf>
        <InstgAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>102100099996</MmbId></ClrSysMmbId></FinInstnId></InstgAgt>
        <InstdAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>104100000004</MmbId></ClrSysMmbId></FinInstnId></InstdAgt>
      </GrpHdr>
"""

TRANSACTION = """      <CdtTrfTxInf>
        <PmtId><EndToEndId>E2E{index:010d}</EndToEndId><TxId>TX{index:016d}</TxId></PmtId>
        <IntrBkSttlmAmt Ccy="CNY">{amount}</IntrBkSttlmAmt>
        <ChrgBr>SLEV</ChrgBr>
        <Dbtr><Nm>北京市海淀区示范科技有限公司</Nm></Dbtr>
        <DbtrAcct><Id><Othr><Id>62220202000{index:08d}</Id></Othr></Id></DbtrAcct>
        <DbtrAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>102100099996</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>
        <CdtrAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>{creditor_agent}</MmbId></ClrSysMmbId></FinInstnId></CdtrAgt>
        <Cdtr><Nm>上海浦东示范贸易有限公司</Nm></Cdtr>
        <CdtrAcct><Id><Othr><Id>4563510100{index:08d}</Id></Othr></Id></CdtrAcct>
        <RmtInf><Ustrd>货款 {index}</Ustrd></RmtInf>
      </CdtTrfTxInf>
"""

FOOTER = """    </FIToFICstmrCdtTrf>
  </Document>
</Message>
"""

CREDITOR_AGENTS = ("104100000004", "104290003033")


def amount_of(index: int) -> int:
    """Amount in minor units of transaction ``index`` (1-based): 1.00 to 49,999.99."""
    return 100 + (index * 7919) % 4_999_900


def write_package(path: Path, count: int, defect_at: int | None = None) -> Path:
    total = sum(amount_of(index) for index in range(1, count + 1))
    message_id = f"B102100099996202611{count:012d}"
    with path.open("w", encoding="utf-8") as out:
        out.write(
            HEADER.format(
                message_id=message_id,
                count=count,
                control_sum=f"{total // 100}.{total % 100:02d}",
            )
        )
        batch: list[str] = []
        for index in range(1, count + 1):
            amount = amount_of(index)
            text = f"{amount // 100}.{amount % 100:02d}" if index != defect_at else "12,50"
            batch.append(
                TRANSACTION.format(
                    index=index,
                    amount=text,
                    creditor_agent=CREDITOR_AGENTS[index % 2],
                )
            )
            if len(batch) == 1000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
        out.write(FOOTER)
    return path


def transaction_line(index: int) -> int:
    """First line of transaction ``index`` in a generated package."""
    header_lines = HEADER.count("\n")
    return header_lines + (index - 1) * TRANSACTION.count("\n") + 1
