<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- Outgoing JSON message: build the fn: XML representation, then xml-to-json. -->
  <xsl:output method="text"/>
  <xsl:template match="/antraege">
    <xsl:variable name="x">
      <fn:map>
        <fn:string key="stichtag"><xsl:value-of select="@stichtag"/></fn:string>
        <fn:number key="anzahl"><xsl:value-of select="count(antrag)"/></fn:number>
        <fn:boolean key="vollstaendig">true</fn:boolean>
        <fn:null key="bemerkung"/>
        <fn:array key="antraege">
          <xsl:for-each select="antrag[@status = 'offen']">
            <fn:map>
              <fn:string key="id"><xsl:value-of select="@id"/></fn:string>
              <fn:string key="name"><xsl:value-of select="vorname, name"/></fn:string>
              <fn:number key="betrag"><xsl:value-of select="@betrag"/></fn:number>
              <fn:string key="hinweis">Pfad a/b "zitiert"&#9;Tab</fn:string>
            </fn:map>
          </xsl:for-each>
        </fn:array>
      </fn:map>
    </xsl:variable>
    <xsl:value-of select="xml-to-json($x)"/>
  </xsl:template>
</xsl:stylesheet>
