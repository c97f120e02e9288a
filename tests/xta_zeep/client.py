"""Drive the hub's XTA-WS server with zeep, a generic SOAP client, from the
official WSDL (schemas/xta/XTA.wsdl, service address overridden).

Usage: client.py WSDL URL SENDER_TOKEN READER_TOKEN METADATA_XML MESSAGE_FILE
                 ATTACHMENT_FILE
Prints one JSON object with what the reader received.
"""
import base64
import json
import os
import sys
import time

import requests
from lxml import etree
from zeep import Client, Settings
from zeep.helpers import serialize_object
from zeep.transports import Transport

XTA = "{http://xoev.de/transport/xta/211}"


def services(wsdl, url, token):
    # zeep adds the WS-Addressing headers itself: the WSDL's operations
    # carry wsam:Action.
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token
    capture = os.environ.get("XTA_CAPTURE_DIR")
    if capture:
        # Keep every server response for the schema check in the Rust test.
        def keep(response, *args, **kwargs):
            n = len(os.listdir(capture))
            with open(os.path.join(capture, "%04d.xml" % n), "wb") as f:
                f.write(response.content)

        session.hooks["response"].append(keep)
    client = Client(
        wsdl,
        transport=Transport(session=session),
        settings=Settings(strict=True, xml_huge_tree=False),
    )
    return (
        client,
        client.create_service(XTA + "managementHttpsBinding", url),
        client.create_service(XTA + "sendXTAHttpsBinding", url),
        client.create_service(XTA + "msgBoxHttpsBinding", url),
    )


def jsonable(obj):
    def conv(o):
        if isinstance(o, bytes):
            return {"base64": base64.b64encode(o).decode()}
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        if hasattr(o, "isoformat"):
            return o.isoformat()
        if isinstance(o, etree._Element):
            return etree.tostring(o).decode()
        return o

    return conv(serialize_object(obj, dict))


def main():
    wsdl, url, sender_token, reader_token, md_file, msg_file, att_file = sys.argv[1:8]
    out = {}
    _, mgmt, send, _ = services(wsdl, url, sender_token)
    mgmt.checkAccountActive()
    message_id = mgmt.createMessageId()
    if not isinstance(message_id, str):
        message_id = message_id["_value_1"]
    out["message_id"] = message_id
    md_xml = open(md_file, encoding="utf-8").read().replace("@MESSAGE_ID@", message_id)
    metadata = etree.fromstring(md_xml.encode())
    message = open(msg_file, "rb").read()
    attachment = open(att_file, "rb").read()
    send.sendMessage(
        ContentContainer={
            "Message": {
                "_value_1": message,
                "contentType": "text/xml",
                "encoding": "UTF-8",
                "filename": "bauantrag.xml",
            },
            "Attachment": [
                {
                    "_value_1": attachment,
                    "contentType": "application/pdf",
                    "filename": "lageplan.pdf",
                    "contentDescription": "Lageplan",
                }
            ],
        },
        _soapheaders=[metadata],
    )
    report = mgmt.getTransportReport(message_id)
    out["report_status_after_send"] = int(report["MessageStatus"]["Status"])

    # The receiving account: wait until the routed message is in its box.
    client, _, _, box = services(wsdl, url, reader_token)
    deadline = time.time() + 60
    while True:
        res = box.getStatusList(maxListItems=10, ListForm="MessageMetaData")
        listed = res.body["MessageMetaData"] if hasattr(res, "body") else res["MessageMetaData"]
        if listed:
            break
        if time.time() > deadline:
            raise SystemExit("the message did not arrive in the reader's mailbox")
        time.sleep(0.2)
    out["status_list"] = jsonable(listed)
    out["status_list_header"] = jsonable(res.header)
    fetched_id = listed[0]["MsgIdentification"]["MessageID"]
    if not isinstance(fetched_id, str):
        fetched_id = fetched_id["_value_1"]
    msg = box.getMessage(MsgSelector={"MessageID": [fetched_id]})
    out["message"] = jsonable(msg.body)
    out["message_header"] = jsonable(msg.header)
    # zeep names header parts after the WSDL part: FetchResponseHeader is
    # the osci:MsgBoxResponse element.
    request_id = msg.header["FetchResponseHeader"]["MsgBoxRequestID"]
    box.close(MsgBoxRequestID=request_id, LastMsgReceived=[fetched_id])
    after = box.getStatusList(maxListItems=10, ListForm="MessageMetaData")
    out["after_close"] = jsonable(after.header)
    # A second close is refused with the XTA fault for unknown ids.
    try:
        box.close(MsgBoxRequestID=request_id, LastMsgReceived=[fetched_id])
        out["second_close"] = "accepted"
    except Exception as e:  # zeep.exceptions.Fault
        detail = getattr(e, "detail", None)
        out["second_close"] = etree.tostring(detail).decode() if detail is not None else str(e)
    # The sender's transport report after delivery into the mailbox (polled
    # until it leaves 0 = open, as XTA senders do).
    deadline = time.time() + 30
    while True:
        report = mgmt.getTransportReport(message_id)
        status = int(report["MessageStatus"]["Status"])
        if status != 0 or time.time() > deadline:
            break
        time.sleep(0.2)
    out["report_status_final"] = status
    # The hub also publishes the WSDL with its own address: zeep loads it
    # (and the XSDs it imports) over HTTP.
    published = Client(url + "?wsdl")
    ports = published.wsdl.services["XTAService"].ports
    out["published_addresses"] = sorted(
        p.binding_options["address"] for p in ports.values()
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
